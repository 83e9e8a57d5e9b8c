"""`safecall web`: the visit teams' and officers' pages (FastAPI, Jinja2 templates with autoescape, a little htmx).

Everything the app needs is passed to `create_web_app`: the services (database, instance, clock), the session
secret and the login limiter. Rules that every page follows:
- a page needs a logged-in, enabled user whose session version is current; a team member sees only their team;
- every POST carries the session's CSRF token (form field `csrf` or header X-CSRF-Token), or gets 403;
- every page that shows personal data writes an audit row naming the web user.
"""

from __future__ import annotations

import functools
import io
from datetime import date, timedelta
from pathlib import Path as FilePath
from typing import Annotated

import anyio
from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from safecall import phones, safety_clock, users
from safecall.errors import InputError, NotFoundError, translated
from safecall.i18n import korean
from safecall.reports import draw_chart, weekly_report
from safecall.services import Services
from safecall.audit import log_access
from safecall.drift import MEASURE_KOREAN, drift_flags
from safecall.store import DISPOSITION_KOREAN, VisitTask, WebUser
from safecall import glossary
from safecall.visits import CALLBACK_OUTCOMES, HOSPITAL_MAX_DAYS, OFFICER_HOSPITAL_MAX_DAYS, OUTCOME_KOREAN, OUTCOMES, RISK_LABEL, confirmation, record_outcome, task_rows
from safecall.web import data
from safecall.web.checkin import add_checkin_routes
from safecall.web.auth import COOKIE, LoginLimiter, Session, SessionCodec, SessionStore, log_in

HERE = FilePath(__file__).parent
PAGE = 50  # tasks on one page of a team's list: enough for a day in the street, light on a phone
# Bounds of what a URL may ask for: beyond them a request is a 400, never an overflow in the database or a date.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
MAX_PAGE = 100_000
MAX_ID = 2**53  # ids are far below; a 20-digit id would overflow SQLite's and PostgreSQL's integers
ARGON2_SLOTS = 2  # password checks at once: each holds a CPU core and its memory; the page threads are not theirs
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold personal data: no copies in shared caches or the back button
}


class LoginRequired(Exception):
    pass


def create_web_app(services: Services, secret: str, *, limiter: LoginLimiter | None = None,
                   hasher: PasswordHasher = users.HASHER) -> FastAPI:
    settings = services.instance.settings
    tz = services.instance.tz
    web = settings.web
    codec = SessionCodec(secret, timedelta(minutes=web.session_minutes), services.clock)
    sessions = SessionStore(services.db, timedelta(minutes=web.session_minutes), services.clock)
    limiter = limiter or LoginLimiter(services.db, web.login_attempts, timedelta(minutes=web.login_window_minutes), services.clock)
    login_threads = anyio.CapacityLimiter(ARGON2_SLOTS)  # whole logins at once, on threads of their own (auth.log_in)
    teams = [t.name for t in settings.teams]
    db = services.db

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescape is on for .html
    templates.env.globals.update(OUTCOME_KOREAN=OUTCOME_KOREAN, ROLE_KOREAN=users.ROLE_KOREAN, DISPOSITION=DISPOSITION_KOREAN,
                                 RISK_LABEL=RISK_LABEL, national=phones.national, WORDS=glossary)
    templates.env.globals.update(WAITED=safety_clock.hours_text, RUNG_KOREAN=safety_clock.RUNG_KOREAN,
                                 MEASURE_KOREAN=MEASURE_KOREAN)
    templates.env.filters["local"] = lambda when, fmt="%Y-%m-%d %H:%M": when.astimezone(tz).strftime(fmt) if when else ""

    def session_of(request: Request) -> Session:
        """The request's session; a fresh anonymous one (with a CSRF token) if it has none or it expired."""
        if not hasattr(request.state, "session"):
            request.state.session = codec.loads(request.cookies.get(COOKIE))
            if request.state.session is None:
                request.state.session, request.state.new_cookie = codec.new(), True
        return request.state.session

    def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        session = session_of(request)
        response = templates.TemplateResponse(request, name, {"csrf": session.csrf, "user": getattr(request.state, "user", None),
                                                              **context}, status_code=status_code)
        return response

    @app.middleware("http")
    async def headers_and_cookie(request: Request, call_next):
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        session = getattr(request.state, "session", None)
        if session is not None and getattr(request.state, "new_cookie", False):
            set_cookie(response, session)
        return response

    def set_cookie(response: Response, session: Session | None) -> None:
        if session is None:
            response.delete_cookie(COOKIE, path="/", secure=web.secure_cookies, httponly=True, samesite="strict")
            return
        response.set_cookie(COOKIE, codec.dumps(session), max_age=int(web.session_minutes * 60), path="/",
                            secure=web.secure_cookies, httponly=True, samesite="strict")

    async def check_csrf(request: Request) -> None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        form = await request.form()
        token = form.get("csrf") or request.headers.get("X-CSRF-Token")
        if not session_of(request).matches(token if isinstance(token, str) else None):
            raise HTTPException(403, "보안 토큰이 맞지 않습니다. 페이지를 새로 열고 다시 시도하세요.")

    def current_user(request: Request) -> WebUser:
        user = sessions.user(session_of(request).token)
        if user is None:  # no session, logged out, expired, or the account was disabled or reset
            raise LoginRequired()
        request.state.user = user
        return user

    def officer(user: WebUser = Depends(current_user)) -> WebUser:
        if user.role != "officer":
            raise HTTPException(403, "복지 담당자만 볼 수 있습니다.")
        return user

    def admin(user: WebUser = Depends(current_user)) -> WebUser:
        if user.role != "admin":
            raise HTTPException(403, "관리자만 볼 수 있습니다.")
        return user

    def may_see_team(user: WebUser, team: str) -> None:
        if user.role == "team" and user.team != team or user.role == "admin" or team not in teams:
            raise HTTPException(403, "이 팀의 명단을 볼 권한이 없습니다.")

    def logged(user: WebUser, action: str, subject: str, detail: str = "") -> None:
        log_access(db, at=services.now(), action=action, subject=subject, detail=detail, actor=f"web:{user.username}")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired):
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)  # the app's own and the router's (404, 405)
    async def error_page(request: Request, exc: StarletteHTTPException):
        message = {404: "그런 페이지가 없습니다.", 405: "허용되지 않는 요청입니다."}.get(exc.status_code, exc.detail)
        return render(request, "error.html", status_code=exc.status_code, status=exc.status_code, message=message)

    @app.exception_handler(RequestValidationError)  # a parameter that is not a number, or out of bounds: never FastAPI's English 422
    async def bad_parameter(request: Request, exc: RequestValidationError):
        names = sorted({str(error["loc"][-1]) for error in exc.errors() if error.get("loc")})
        return render(request, "error.html", status_code=400, status=400,
                      message=f"요청 값이 올바르지 않습니다: {', '.join(names)}" if names else "요청 값이 올바르지 않습니다.")

    # ---- login -------------------------------------------------------------------------------
    @app.get("/login")
    async def login_page(request: Request):  # async: no DB, and a login must not queue behind pages for a thread
        return render(request, "login.html")

    @app.post("/login", dependencies=[Depends(check_csrf)])
    async def login(request: Request, username: str = Form(""), password: str = Form("")):
        # Async, so a login waiting for a login thread holds no page thread: other pages go on being served.
        address = request.client.host if request.client else "?"
        username = users.normalise_username(username)
        # The reservation is taken on a login thread: it counts checks in flight as well as failures, so people logging
        # in at once from one office address (behind one NAT) must not add up to a limit meant for failures.
        outcome = await anyio.to_thread.run_sync(functools.partial(
            log_in, db, limiter, sessions, username, password, address, hasher=hasher, now=services.now), limiter=login_threads)
        if outcome.refused:
            return render(request, "login.html", status_code=429, error="로그인 실패가 너무 많습니다. 잠시 후 다시 시도하세요.")
        if outcome.user is None:
            return render(request, "login.html", status_code=401, error="아이디 또는 비밀번호가 맞지 않습니다.")
        request.state.session = codec.new(outcome.token)  # a new session (and CSRF token) at login
        request.state.new_cookie = True
        return RedirectResponse("/", status_code=303)

    @app.post("/logout", dependencies=[Depends(check_csrf)])
    def logout(request: Request):
        token = session_of(request).token
        user = sessions.user(token)
        sessions.end(token)  # on the server: a copy of the cookie is no session any more
        if user:
            logged(user, "web.logout", f"user {user.username}")
        response = RedirectResponse("/login", status_code=303)
        set_cookie(response, None)
        request.state.session = None
        return response

    @app.get("/")
    def home(user: WebUser = Depends(current_user)):
        target = {"team": f"/team/{user.team}", "officer": "/callbacks", "admin": "/admin/users"}[user.role]
        return RedirectResponse(target, status_code=303)

    # ---- visit teams -------------------------------------------------------------------------
    def day_param(text: str | None) -> date:
        if not text:
            return services.today()
        try:
            day = date.fromisoformat(text)
        except ValueError:
            day = None
        if day is None or not FIRST_DAY <= day <= LAST_DAY:
            raise HTTPException(400, f"날짜 {text[:20]!r}가 올바르지 않습니다 ({FIRST_DAY:%Y}~{LAST_DAY:%Y}년, YYYY-MM-DD).")
        return day

    def note_kinds(user: WebUser) -> tuple[str, ...]:
        """A team sees visit notes only: an officer's call-back notes (what the person said on the phone) stay officers'."""
        return ("visit", "callback") if user.role == "officer" else ("visit",)

    def saved_message(user: WebUser, saved: int | None, kind: str) -> str | None:
        """The confirmation after a save (the list's ?saved=TASK): what was saved for whom, and what happens next."""
        if not saved:
            return None
        found = data.task_and_person(db, saved)
        if found is None or found[0].kind != kind or found[0].outcome is None:
            return None
        task, person = found
        if user.role == "team" and task.team != user.team:
            return None
        return confirmation(person.name, task.outcome, person.paused_until)

    @app.get("/team/{team}")
    def team_list(request: Request, team: str, day: str | None = None, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
                  saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                  user: WebUser = Depends(current_user)):
        may_see_team(user, team)
        on, page = day_param(day), max(1, page)
        total, rows = task_rows(db, tz, on=on, kind="visit", team=team, offset=(page - 1) * PAGE, limit=PAGE)
        notes = data.earlier_notes(db, [r.person_id for r in rows], except_tasks={r.task for r in rows}, kinds=("visit",))
        logged(user, "web.view", f"team {team} visit list", f"day={on} page={page} tasks={len(rows)}")
        return render(request, "team.html", team=team, day=on, rows=rows, notes=notes, total=total, page=page,
                      pages=max(1, -(-total // PAGE)), prev_day=on - timedelta(days=1), next_day=on + timedelta(days=1),
                      message=saved_message(user, saved, "visit"))

    def task_for(user: WebUser, task_id: int) -> VisitTask:
        with db.session() as session:
            task = session.get(VisitTask, task_id)
        if task is None:
            raise HTTPException(404, "그런 과제가 없습니다.")
        if task.kind == "callback" and user.role != "officer":
            raise HTTPException(403, "복지 담당자만 볼 수 있습니다.")
        may_see_team(user, task.team)
        return task

    @app.get("/task/{task_id}")
    def task_page(request: Request, task_id: RowId, user: WebUser = Depends(current_user)):
        return show_task(request, task_id, user)

    def waiting(run_id: int | None = None) -> dict[int, safety_clock.Waiting]:
        """The safety clocks of the tasks still waiting for a human (of one run, or all)."""
        return {w.task_id: w for w in safety_clock.clocks(db, settings, now=services.now(), run_id=run_id, open_only=True)}

    def show_task(request: Request, task_id: int, user: WebUser, error: list[str] | None = None, status_code: int = 200):
        """The task and its form; `error`: why a post was refused (never from the address: only the app says what failed)."""
        task = task_for(user, task_id)
        history = data.person_history(db, task.person_id)
        notes = data.earlier_notes(db, [task.person_id], except_tasks={task.id}, kinds=note_kinds(user))[task.person_id]
        logged(user, "web.view", f"task {task_id}", f"person={task.person_id}")
        return render(request, "task.html", status_code, task=task, person=history.person,
                      attempts=[a for a in history.attempts if a.run_id == task.run_id],
                      notes=notes, outcomes=CALLBACK_OUTCOMES if task.kind == "callback" else OUTCOMES, error=error,
                      clock=waiting(task.run_id).get(task.id),
                      today=services.today(),  # the browser's bounds of the hospital date; the server checks them again
                      latest_until=services.today() + timedelta(days=OFFICER_HOSPITAL_MAX_DAYS if user.role == "officer" else HOSPITAL_MAX_DAYS))

    @app.post("/task/{task_id}/outcome", dependencies=[Depends(check_csrf)])
    def task_record(request: Request, task_id: RowId, outcome: str = Form(""), note: str = Form(""), until: str = Form(""),
                    user: WebUser = Depends(current_user)):
        # No default: an untouched form sends no outcome, which record_outcome refuses (the browser's `required` aside).
        task = task_for(user, task_id)
        try:
            until_day = date.fromisoformat(until) if until else None
        except ValueError:
            return show_task(request, task_id, user, error=[f"입원 종료일: 날짜 {until!r}가 올바르지 않습니다. 저장하지 않았습니다."],
                             status_code=400)
        try:
            record_outcome(db, task_id, outcome, now=services.now(), tz=tz, note=note.strip() or None, until=until_day,
                           actor=f"web:{user.username}", team=user.team if user.role == "team" else None,
                           officer=user.role == "officer")
        except (InputError, NotFoundError) as exc:
            gettext = korean().gettext
            return show_task(request, task_id, user, status_code=400,
                             error=[exc.translated(gettext)] + [translated(p, gettext) for p in getattr(exc, "problems", [])])
        return RedirectResponse(f"/callbacks?saved={task_id}" if task.kind == "callback" else f"/team/{task.team}?saved={task_id}",
                                status_code=303)

    # ---- officers ----------------------------------------------------------------------------
    @app.get("/callbacks")
    def callback_list(request: Request, saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      user: WebUser = Depends(officer)):
        today = services.today()
        open_items, closed_items = data.callbacks(db, since=today - timedelta(days=7))
        logged(user, "web.view", "callback list", f"open={len(open_items)}")
        return render(request, "callbacks.html", open_items=open_items, closed_items=closed_items, outcomes=CALLBACK_OUTCOMES,
                      clocks=waiting(),
                      message=saved_message(user, saved, "callback"))

    @app.get("/teams")
    def team_index(request: Request, user: WebUser = Depends(officer)):
        return render(request, "teams.html", teams=teams)

    @app.get("/progress")
    def progress(request: Request, user: WebUser = Depends(officer)):
        return render(request, "progress.html", runs=data.open_runs(db))

    @app.get("/progress/counts")
    def progress_counts(request: Request, user: WebUser = Depends(officer)):
        return render(request, "progress_counts.html", runs=data.open_runs(db), now=services.now())

    @app.get("/report")
    def report(request: Request, user: WebUser = Depends(officer)):
        return render(request, "report.html", rows=weekly_report(db), drift=drift_flags(db))

    @app.get("/report/chart.png")
    def report_chart(user: WebUser = Depends(officer)):
        image = io.BytesIO()
        draw_chart(weekly_report(db), image)
        return Response(image.getvalue(), media_type="image/png")

    @app.get("/person/{person_id}")
    def person_page(request: Request, person_id: RowId, user: WebUser = Depends(officer)):
        history = data.person_history(db, person_id)
        if history is None:
            raise HTTPException(404, "그런 사람이 없습니다.")
        logged(user, "web.view", f"person {person_id}", "history")
        return render(request, "person.html", h=history, drift=next(iter(drift_flags(db, [person_id])), None))

    # ---- admin -------------------------------------------------------------------------------
    @app.get("/admin/users")
    def user_admin(request: Request, user: WebUser = Depends(admin), message: str | None = None, error: str | None = None):
        return render(request, "users.html", accounts=users.list_users(db), teams=teams, roles=users.ROLES, message=message, error=error)

    @app.post("/admin/users", dependencies=[Depends(check_csrf)])
    def user_add(request: Request, username: str = Form(...), role: str = Form(...), team: str = Form(""),
                 user: WebUser = Depends(admin)):
        password = users.new_password()
        try:
            users.add_user(db, username.strip(), password, role=role, team=team or None, teams=teams, now=services.now(),
                           actor=f"web:{user.username}")
        except InputError as exc:
            return user_admin(request, user, error=str(exc))
        return user_admin(request, user, message=f"{username} 계정을 만들었습니다. 처음 비밀번호: {password}")

    @app.post("/admin/users/{username}/disable", dependencies=[Depends(check_csrf)])
    def user_disable(request: Request, username: str, user: WebUser = Depends(admin)):
        try:
            users.disable_user(db, username, now=services.now(), actor=f"web:{user.username}")
        except NotFoundError as exc:
            return user_admin(request, user, error=str(exc))
        return user_admin(request, user, message=f"{username} 계정을 막았습니다.")

    @app.post("/admin/users/{username}/reset", dependencies=[Depends(check_csrf)])
    def user_reset(request: Request, username: str, user: WebUser = Depends(admin)):
        password = users.new_password()
        try:
            users.reset_password(db, username, password, now=services.now(), actor=f"web:{user.username}")
        except NotFoundError as exc:
            return user_admin(request, user, error=str(exc))
        return user_admin(request, user, message=f"{username} 새 비밀번호: {password}")

    add_checkin_routes(app, services, secret, render)  # the people's one-tap page: no login (web/checkin.py)
    return app
