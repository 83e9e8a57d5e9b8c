"""The lists of tasks: a visit team's list of the day, the officers' call-backs (words of risk first), and one task's
page, where a team (or an officer, for a call-back) records the outcome."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from safecall import helpline, safety_clock
from safecall.domain import TaskKind, WebRole
from safecall.errors import InputError, NotFoundError, translated
from safecall.i18n import korean
from safecall.services import Services
from safecall.store import VisitTask, WebUser
from safecall.visits import (
    CALLBACK_OUTCOMES,
    HOSPITAL_MAX_DAYS,
    OFFICER_HOSPITAL_MAX_DAYS,
    OUTCOMES,
    confirmation,
    record_outcome,
    task_rows,
)
from safecall.web import data, messages
from safecall.web.deps import (
    CSRF,
    FIRST_DAY,
    LAST_DAY,
    MAX_ID,
    MAX_PAGE,
    Officer,
    RowId,
    Svc,
    Teams,
    User,
    logged,
    may_see_team,
    render,
)

PAGE = 50  # tasks on one page of a team's list: enough for a day in the street, light on a phone

router = APIRouter()


def day_param(services: Services, text: str | None) -> date:
    if not text:
        return services.today()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(
            400, f"날짜 {text[:20]!r}가 올바르지 않습니다 ({FIRST_DAY:%Y}~{LAST_DAY:%Y}년, YYYY-MM-DD)."
        )
    return day


def note_kinds(user: WebUser) -> tuple[str, ...]:
    """A team sees visit notes only: an officer's call-back notes (what the person said on the phone) stay officers'."""
    return (TaskKind.VISIT, TaskKind.CALLBACK) if user.role == WebRole.OFFICER else (TaskKind.VISIT,)


def saved_message(services: Services, user: WebUser, saved: int | None, kind: str) -> str | None:
    """The confirmation after a save (the list's ?saved=TASK): what was saved for whom, and what happens next."""
    if not saved:
        return None
    found = data.task_and_person(services.db, saved)
    if found is None:
        return None
    task, person = found
    if task.kind != kind or task.outcome is None:
        return None
    if user.role == WebRole.TEAM and task.team != user.team:
        return None
    return confirmation(person.name, task.outcome, person.paused_until)


def waiting(services: Services, run_id: int | None = None) -> dict[int, safety_clock.Waiting]:
    """The safety clocks of the tasks still waiting for a human (of one run, or all)."""
    clocks = safety_clock.clocks(
        services.db, services.instance.settings, now=services.now(), run_id=run_id, open_only=True
    )
    return {w.task_id: w for w in clocks}


@router.get("/team/{team}")
def team_list(
    request: Request,
    services: Svc,
    teams: Teams,
    user: User,
    team: str,
    day: str | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
):
    may_see_team(teams, user, team)
    db = services.db
    on, page = day_param(services, day), max(1, page)
    total, rows = task_rows(  # the page shows earlier notes its own way (`notes`), not the exported lists' column
        db,
        services.instance.tz,
        on=on,
        kind=TaskKind.VISIT,
        team=team,
        offset=(page - 1) * PAGE,
        limit=PAGE,
        notes=False,
    )
    notes = data.earlier_notes(db, [r.person_id for r in rows], except_tasks={r.task for r in rows}, kinds=("visit",))
    logged(services, user, "web.view", f"team {team} visit list", f"day={on} page={page} tasks={len(rows)}")
    return render(
        request,
        "team.html",
        team=team,
        day=on,
        rows=rows,
        notes=notes,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE)),
        prev_day=on - timedelta(days=1),
        next_day=on + timedelta(days=1),
        message=saved_message(services, user, saved, "visit"),
    )


@router.get("/callbacks")
def callback_list(
    request: Request, services: Svc, user: Officer, saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
):
    today = services.today()
    open_items, closed_items = data.callbacks(services.db, since=today - timedelta(days=7))
    logged(services, user, "web.view", "callback list", f"open={len(open_items)}")
    return render(
        request,
        "callbacks.html",
        open_items=open_items,
        closed_items=closed_items,
        outcomes=CALLBACK_OUTCOMES,
        clocks=waiting(services),
        message=saved_message(services, user, saved, "callback"),
        help_calls=helpline.help_calls_of_tasks(services.db, [i.task for i in open_items]),
    )


def task_for(services: Services, teams: list[str], user: WebUser, task_id: int) -> VisitTask:
    with services.db.session() as session:
        task = session.get(VisitTask, task_id)
    if task is None:
        raise HTTPException(404, "그런 과제가 없습니다.")
    if task.kind == TaskKind.CALLBACK and user.role != WebRole.OFFICER:
        raise HTTPException(403, "복지 담당자만 볼 수 있습니다.")
    may_see_team(teams, user, task.team)
    return task


@router.get("/task/{task_id}")
def task_page(request: Request, services: Svc, teams: Teams, user: User, task_id: RowId):
    return show_task(request, services, teams, user, task_id)


@router.get("/task/{task_id}/message/{help_id}")
def task_message(services: Svc, teams: Teams, user: Officer, task_id: RowId, help_id: RowId):
    """A message left on "help", for the officer's <audio>: every play is in the audit."""
    task = task_for(services, teams, user, task_id)
    try:
        audio = messages.message_audio(services.instance, services.db, task, help_id)
    except messages.MessageMissing as exc:
        logged(services, user, "web.play_message", f"task {task_id}", f"message={help_id} missing: {exc}")
        raise HTTPException(404) from None  # the error page says 그런 페이지가 없습니다
    logged(services, user, "web.play_message", f"task {task_id}", f"person={task.person_id} message={help_id}")
    return StreamingResponse(audio, media_type="audio/wav")


def show_task(
    request: Request,
    services: Services,
    teams: list[str],
    user: WebUser,
    task_id: int,
    error: list[str] | None = None,
    status_code: int = 200,
):
    """The task and its form; `error`: why a post was refused
    (never from the address: only the app says what failed)."""
    task = task_for(services, teams, user, task_id)
    history = data.person_history(services.db, task.person_id)
    assert history is not None, "a task's person is kept (the task refers to it)"
    notes = data.earlier_notes(services.db, [task.person_id], except_tasks={task_id}, kinds=note_kinds(user))[
        task.person_id
    ]
    logged(services, user, "web.view", f"task {task_id}", f"person={task.person_id}")
    today = services.today()
    return render(
        request,
        "task.html",
        status_code,
        task=task,
        person=history.person,
        attempts=[a for a in history.attempts if a.run_id == task.run_id],
        notes=notes,
        outcomes=CALLBACK_OUTCOMES if task.kind == TaskKind.CALLBACK else OUTCOMES,
        error=error,
        help_calls=helpline.help_calls(services.db, task.run_id, task.person_id)
        if task.kind == TaskKind.CALLBACK
        else [],
        clock=waiting(services, task.run_id).get(task_id),
        today=today,  # the browser's bounds of the hospital date; the server checks them again
        latest_until=today
        + timedelta(days=OFFICER_HOSPITAL_MAX_DAYS if user.role == WebRole.OFFICER else HOSPITAL_MAX_DAYS),
    )


@router.post("/task/{task_id}/outcome", dependencies=CSRF)
def task_record(
    request: Request,
    services: Svc,
    teams: Teams,
    user: User,
    task_id: RowId,
    outcome: str = Form(""),
    note: str = Form(""),
    until: str = Form(""),
):
    # No default: an untouched form sends no outcome, which record_outcome refuses (the browser's `required` aside).
    task = task_for(services, teams, user, task_id)
    try:
        until_day = date.fromisoformat(until) if until else None
    except ValueError:
        return show_task(
            request,
            services,
            teams,
            user,
            task_id,
            status_code=400,
            error=[f"입원 종료일: 날짜 {until!r}가 올바르지 않습니다. 저장하지 않았습니다."],
        )
    try:
        record_outcome(
            services.db,
            task_id,
            outcome,
            now=services.now(),
            tz=services.instance.tz,
            note=note.strip() or None,
            until=until_day,
            actor=f"web:{user.username}",
            team=user.team if user.role == WebRole.TEAM else None,
            officer=user.role == WebRole.OFFICER,
        )
    except (InputError, NotFoundError) as exc:
        gettext = korean().gettext
        return show_task(
            request,
            services,
            teams,
            user,
            task_id,
            status_code=400,
            error=[exc.translated(gettext)] + [translated(p, gettext) for p in getattr(exc, "problems", [])],
        )
    return RedirectResponse(
        f"/callbacks?saved={task_id}" if task.kind == TaskKind.CALLBACK else f"/team/{task.team}?saved={task_id}",
        status_code=303,
    )
