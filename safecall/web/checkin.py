"""The one-tap check-in page (safecall/checkin.py): no login; the signed, single-use link is the proof.

A GET only shows the buttons (phones and messengers fetch links to preview them: a GET never records); a POST
records the tap. No CSRF token is asked: a forged POST would need the link's token, which is the secret itself.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Path, Request

from safecall import checkin
from safecall.checkin import LinkSigner, TapResult
from safecall.services import Services
from safecall.web.deps import Svc, render

TOKEN = Path(min_length=10, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
RESULT = {  # what the person reads, and the HTTP status
    TapResult.USED: (409, "이미 누른 링크입니다", "이 링크로는 한 번만 기록됩니다. 처음 누르신 답이 전해졌습니다."),
    TapResult.EXPIRED: (
        410,
        "기한이 지난 링크입니다",
        "이 링크는 쓸 수 있는 기한이 지났습니다. 전화를 받으시거나 주민센터로 연락해 주세요.",
    ),
    TapResult.FORGED: (
        404,
        "올바르지 않은 링크입니다",
        "이 링크로는 기록할 수 없습니다. 받으신 문자의 주소를 그대로 열어 주세요.",
    ),
    TapResult.ANSWERED: (200, "이번 주 안부는 이미 확인되었습니다", "이번 주에는 더 하실 일이 없습니다. 고맙습니다."),
}
RECORDED = {
    "well": ("고맙습니다", "잘 지내신다고 전해 드렸습니다. 이번 주 안부 확인을 마쳤습니다."),
    "help": ("도움 요청을 전해 드렸습니다", "담당 공무원이 오늘 중으로 연락드립니다."),
}


router = APIRouter()


async def signer_of(request: Request) -> LinkSigner:
    return request.app.state.link_signer


def result_page(request: Request, services: Services, result: TapResult):
    status, heading, message = RESULT[result]
    return render(
        request,
        "checkin.html",
        status_code=status,
        result=result,
        heading=heading,
        message=message,
        callback=services.instance.settings.sms.callback(),
    )


@router.get("/c/{token}")
def checkin_page(request: Request, services: Svc, signer: LinkSigner = Depends(signer_of), token: str = TOKEN):
    state = checkin.link_state(services.db, signer, token, services.now())
    if state.result is not None:
        return result_page(request, services, state.result)
    return render(
        request,
        "checkin.html",
        token=token,
        person_name=state.person_name,
        callback=services.instance.settings.sms.callback(),
    )


@router.post("/c/{token}")
def checkin_tap(
    request: Request, services: Svc, signer: LinkSigner = Depends(signer_of), token: str = TOKEN, choice: str = Form("")
):
    result = checkin.tap(services.db, services.lifecycle, signer, token, choice, services.now())
    if result != TapResult.RECORDED:
        return result_page(request, services, result)
    heading, message = RECORDED[choice]
    return render(
        request,
        "checkin.html",
        result=result,
        heading=heading,
        message=message,
        callback=services.instance.settings.sms.callback(),
    )
