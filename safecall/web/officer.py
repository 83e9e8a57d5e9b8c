"""The officers' other pages: the teams, the open runs' progress, the weekly report and one person's history."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from safecall.domain import TaskKind
from safecall.drift import drift_flags
from safecall.errors import InputError, NotFoundError
from safecall.i18n import korean
from safecall.reports import draw_chart, weekly_report
from safecall.services import Services
from safecall.store import WebUser
from safecall.visits import confirmation
from safecall.web import data, numbers
from safecall.web.deps import CSRF, MAX_ID, Officer, RowId, Svc, Teams, logged, render

router = APIRouter()


@router.get("/teams")
def team_index(request: Request, teams: Teams, user: Officer):
    return render(request, "teams.html", teams=teams)


@router.get("/progress")
def progress(request: Request, services: Svc, user: Officer):
    return render(request, "progress.html", runs=data.open_runs(services.db))


@router.get("/progress/counts")
def progress_counts(request: Request, services: Svc, user: Officer):
    return render(request, "progress_counts.html", runs=data.open_runs(services.db), now=services.now())


@router.get("/report")
def report(request: Request, services: Svc, user: Officer):
    return render(request, "report.html", rows=weekly_report(services.db), drift=drift_flags(services.db))


@router.get("/report/chart.png")
def report_chart(services: Svc, user: Officer):
    image = io.BytesIO()
    draw_chart(weekly_report(services.db), image)
    return Response(image.getvalue(), media_type="image/png")


@router.get("/person/{person_id}")
def person_page(request: Request, services: Svc, user: Officer, person_id: RowId):
    history = data.person_history(services.db, person_id)
    if history is None:
        raise HTTPException(404, "그런 사람이 없습니다.")
    logged(services, user, "web.view", f"person {person_id}", "history")
    return render(request, "person.html", h=history, drift=next(iter(drift_flags(services.db, [person_id])), None))


@router.get("/numbers")  # number-fix tasks (번호 확인 필요): the logic is in web/numbers.py
def number_list(
    request: Request, services: Svc, user: Officer, saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
):
    return show_numbers(request, services, user, saved=saved)


@router.post("/numbers/{task_id}", dependencies=CSRF)
def number_fix(
    request: Request, services: Svc, user: Officer, task_id: RowId, outcome: str = Form(""), phone: str = Form("")
):
    try:
        numbers.fix_number(
            services.db,
            task_id,
            outcome=outcome,
            phone=phone,
            now=services.now(),
            tz=services.instance.tz,
            actor=f"web:{user.username}",
        )
    except (InputError, NotFoundError) as exc:
        return show_numbers(
            request, services, user, refused=(task_id, exc.translated(korean().gettext), phone), status_code=400
        )
    return RedirectResponse(f"/numbers?saved={task_id}", status_code=303)


def show_numbers(
    request: Request,
    services: Services,
    user: WebUser,
    saved: int | None = None,
    refused: tuple[int, str, str] | None = None,
    status_code: int = 200,
):
    items = numbers.open_number_tasks(services.db)
    logged(services, user, "web.view", "number list", f"open={len(items)}")
    found = data.task_and_person(services.db, saved) if saved else None
    message = (
        confirmation(found[1].name, found[0].outcome)
        if found and found[0].kind == TaskKind.NUMBER and found[0].outcome
        else None
    )
    return render(request, "numbers.html", status_code, items=items, message=message, refused=refused)
