"""What every page depends on, read from `app.state` (set by `create_web_app`): the services, the session codec
and store, the templates; and the rules every page follows (a current user of the right role, the CSRF token).

The routers hold no state of their own: two apps built from two offices' services serve each their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from safecall.audit import log_access
from safecall.domain import WebRole
from safecall.services import Services
from safecall.store import WebUser
from safecall.web.auth import COOKIE, Session, SessionCodec, SessionStore

# Bounds of what a URL may ask for: beyond them a request is a 400, never an overflow in the database or a date.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
MAX_PAGE = 100_000
MAX_ID = 2**53  # ids are far below; a 20-digit id would overflow SQLite's and PostgreSQL's integers
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


class LoginRequired(Exception):
    pass


# ---- the app's state ---------------------------------------------------------------------------
def services_of(request: Request) -> Iterator[Services]:
    """The office's services for this request, their database one unit of work the request opens
    (UnitOfWork, store/db.py): a page's reads are one consistent read; a form's writes are committed together,
    before the answer is sent (scope "function", below), or not at all if the request fails."""
    services: Services = request.app.state.services
    with services.db.unit(read_only=request.method in ("GET", "HEAD")) as unit:
        yield replace(services, db=unit, _lifecycle=services.lifecycle)


# The other dependencies are async: a sync one would take a worker thread only to read an attribute.


async def teams_of(request: Request) -> list[str]:
    return request.app.state.teams


def sessions_of(request: Request) -> SessionStore:
    return request.app.state.sessions


def codec_of(request: Request) -> SessionCodec:
    return request.app.state.codec


Svc = Annotated[Services, Depends(services_of, scope="function")]
Teams = Annotated[list[str], Depends(teams_of)]


# ---- sessions, cookies, pages ------------------------------------------------------------------
def session_of(request: Request) -> Session:
    """The request's session; a fresh anonymous one (with a CSRF token) if it has none or it expired."""
    if not hasattr(request.state, "session"):
        codec = codec_of(request)
        request.state.session = codec.loads(request.cookies.get(COOKIE))
        if request.state.session is None:
            request.state.session, request.state.new_cookie = codec.new(), True
    return request.state.session


def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    session = session_of(request)
    return request.app.state.templates.TemplateResponse(
        request,
        name,
        {"csrf": session.csrf, "user": getattr(request.state, "user", None), **context},
        status_code=status_code,
    )


def set_cookie(request: Request, response: Response, session: Session | None) -> None:
    """The session's cookie on the response, or its removal (None)."""
    web = request.app.state.services.instance.settings.web
    if session is None:
        response.delete_cookie(COOKIE, path="/", secure=web.secure_cookies, httponly=True, samesite="strict")
        return
    response.set_cookie(
        COOKIE,
        codec_of(request).dumps(session),
        max_age=int(web.session_minutes * 60),
        path="/",
        secure=web.secure_cookies,
        httponly=True,
        samesite="strict",
    )


async def check_csrf(request: Request) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    token = form.get("csrf") or request.headers.get("X-CSRF-Token")
    if not session_of(request).matches(token if isinstance(token, str) else None):
        raise HTTPException(403, "보안 토큰이 맞지 않습니다. 페이지를 새로 열고 다시 시도하세요.")


CSRF = [Depends(check_csrf)]


# ---- who is asking -----------------------------------------------------------------------------
def current_user(request: Request) -> WebUser:
    user = sessions_of(request).user(session_of(request).token)
    if user is None:  # no session, logged out, expired, or the account was disabled or reset
        raise LoginRequired()
    request.state.user = user
    return user


def officer(user: WebUser = Depends(current_user)) -> WebUser:
    if user.role != WebRole.OFFICER:
        raise HTTPException(403, "복지 담당자만 볼 수 있습니다.")
    return user


def admin(user: WebUser = Depends(current_user)) -> WebUser:
    if user.role != WebRole.ADMIN:
        raise HTTPException(403, "관리자만 볼 수 있습니다.")
    return user


User = Annotated[WebUser, Depends(current_user)]
Officer = Annotated[WebUser, Depends(officer)]
Admin = Annotated[WebUser, Depends(admin)]


def may_see_team(teams: list[str], user: WebUser, team: str) -> None:
    if user.role == WebRole.TEAM and user.team != team or user.role == WebRole.ADMIN or team not in teams:
        raise HTTPException(403, "이 팀의 명단을 볼 권한이 없습니다.")


def logged(services: Services, user: WebUser, action: str, subject: str, detail: str = "") -> None:
    """An audit row naming the web user: every page that shows personal data writes one."""
    log_access(  # a page's row on its own (its unit only reads); a form's with the form's writes
        services.db.for_writes,
        at=services.now(),
        action=action,
        subject=subject,
        detail=detail,
        actor=f"web:{user.username}",
    )
