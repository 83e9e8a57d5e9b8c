"""`safecall web`: the visit teams' and officers' pages (FastAPI, Jinja2 templates with autoescape, a little htmx).

`create_web_app` builds the app: it puts what the pages need on `app.state` (the services, the session codec and
store, the login limiter, the templates) and includes one router per area; the routers read it through the
dependencies in web/deps.py. Rules that every page follows:
- a page needs a logged-in, enabled user whose session version is current; a team member sees only their team;
- every POST carries the session's CSRF token (form field `csrf` or header X-CSRF-Token), or gets 403;
- every page that shows personal data writes an audit row naming the web user.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path as FilePath

import anyio
from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from safecall import glossary, phones, safety_clock, users
from safecall.checkin import LinkSigner
from safecall.drift import MEASURE_KOREAN
from safecall.errors import ConfigError
from safecall.services import Services
from safecall.store import DISPOSITION_KOREAN
from safecall.visits import OUTCOME_KOREAN, RISK_LABEL
from safecall.web import admin, checkin, login, officer, tasks
from safecall.web.auth import LoginLimiter, SessionCodec, SessionStore
from safecall.web.deps import LoginRequired, render, set_cookie

HERE = FilePath(__file__).parent
ARGON2_SLOTS = 2  # password checks at once: each holds a CPU core and its memory; the page threads are not theirs
# Threads that serve pages (the routes that are not async). anyio's default is 40, but the database pool has 15
# connections (SQLAlchemy's 5 + 10 overflow): under load the 16th thread waited for one and failed after 30 s. Pages
# are Python under one GIL, so more threads only make each page wait longer; logins have ARGON2_SLOTS of their own.
PAGE_THREADS = 8
DATABASE_CONNECTIONS = 15
assert PAGE_THREADS + ARGON2_SLOTS <= DATABASE_CONNECTIONS
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold personal data: no copies in shared caches or the back button
}
ROUTERS = (
    login.router,
    tasks.router,
    officer.router,
    admin.router,
    checkin.router,
)  # the people's one-tap page: no login (web/checkin.py)


def create_web_app(
    services: Services, secret: str, *, limiter: LoginLimiter | None = None, hasher: PasswordHasher = users.HASHER
) -> FastAPI:
    web = services.instance.settings.web
    lifetime = timedelta(minutes=web.session_minutes)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.codec = SessionCodec(secret, lifetime, services.clock)
    app.state.sessions = SessionStore(services.db, lifetime, services.clock)
    app.state.limiter = limiter or LoginLimiter(
        services.db, web.login_attempts, timedelta(minutes=web.login_window_minutes), services.clock
    )
    app.state.hasher = hasher
    app.state.login_threads = anyio.CapacityLimiter(ARGON2_SLOTS)  # whole logins at once, on threads of their own
    app.state.teams = [t.name for t in services.instance.settings.teams]
    app.state.templates = make_templates(HERE / "templates", services.instance.tz)
    app.state.link_signer = LinkSigner(secret)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(HeadersAndCookie)
    # As decorators: add_exception_handler's type takes only handlers of any Exception.
    app.exception_handler(LoginRequired)(to_login)
    app.exception_handler(StarletteHTTPException)(error_page)  # the app's own and the router's (404, 405)
    app.exception_handler(RequestValidationError)(bad_parameter)
    for router in ROUTERS:
        app.include_router(router)
    return app


def make_templates(directory, tz) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)  # autoescape is on for .html
    templates.env.globals.update(
        OUTCOME_KOREAN=OUTCOME_KOREAN,
        ROLE_KOREAN=users.ROLE_KOREAN,
        DISPOSITION=DISPOSITION_KOREAN,
        RISK_LABEL=RISK_LABEL,
        national=phones.national,
        WORDS=glossary,
    )
    templates.env.globals.update(
        WAITED=safety_clock.hours_text, RUNG_KOREAN=safety_clock.RUNG_KOREAN, MEASURE_KOREAN=MEASURE_KOREAN
    )
    templates.env.filters["local"] = lambda when, fmt="%Y-%m-%d %H:%M": (
        when.astimezone(tz).strftime(fmt) if when else ""
    )
    return templates


class HeadersAndCookie:
    """The security headers on every response, and a new session's cookie. Plain ASGI: Starlette's `@app.middleware`
    runs each request in a task of its own and passes the response through a stream, about a sixth of the server's
    CPU a page under load (BENCHMARKS.md, "The team's list under load")."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # what the routes set on request.state (the session) is read here

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
                session = state.get("session")
                if session is not None and state.get("new_cookie", False):
                    cookie = Response()
                    set_cookie(Request(scope), cookie, session)
                    headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def to_login(request: Request, exc: LoginRequired):
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    return RedirectResponse("/login", status_code=303)


async def error_page(request: Request, exc: StarletteHTTPException):
    message = {404: "그런 페이지가 없습니다.", 405: "허용되지 않는 요청입니다."}.get(exc.status_code, exc.detail)
    return render(request, "error.html", status_code=exc.status_code, status=exc.status_code, message=message)


async def bad_parameter(request: Request, exc: RequestValidationError):
    """A parameter that is not a number, or out of bounds: never FastAPI's English 422."""
    names = sorted({str(error["loc"][-1]) for error in exc.errors() if error.get("loc")})
    return render(
        request,
        "error.html",
        status_code=400,
        status=400,
        message=f"요청 값이 올바르지 않습니다: {', '.join(names)}" if names else "요청 값이 올바르지 않습니다.",
    )


def serve(services: Services, *, host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Run the app under uvicorn until interrupted; 127.0.0.1 unless the settings or `host` say otherwise.

    `workers` > 1: that many processes serve one listening socket. Pages are Python under one GIL a process, so one
    process uses one core at most; what the processes share (sessions, CSRF tokens in signed cookies, the login
    limit, the audit chain) is in the database or the cookie, never in a process's memory."""
    import uvicorn

    from safecall.events import uvicorn_log_config

    web = services.instance.settings.web
    try:
        app = create_web_app(services, web.secret_key.resolve(services.instance.environ))
    except ValueError as exc:  # a secret too short to sign sessions with
        raise ConfigError(f"config/safecall.toml: key 'web.secret_key' ({web.secret_key.describe()}): {exc}") from exc
    # The argon2 bound is the server's, not a process's: the slots are shared out between the processes.
    app.state.login_threads = anyio.CapacityLimiter(max(1, ARGON2_SLOTS // workers))
    # Behind the TLS proxy on the same machine: the client address comes from its X-Forwarded-For.
    config = uvicorn.Config(
        with_page_threads(app, PAGE_THREADS),
        host=host or web.host,
        port=port or web.port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
        log_level="info",
        log_config=uvicorn_log_config(("uvicorn", "uvicorn.error", "uvicorn.access", "safecall")),
    )
    if workers <= 1:
        uvicorn.Server(config).run()
    else:
        serve_forked(services, config, workers)


def serve_forked(services: Services, config, workers: int) -> None:
    """`workers` forked processes serving one socket bound here. uvicorn's own workers start each process afresh
    from an import string; forking keeps the services this command was given (its clock, its instance). When one
    process ends, the others are stopped too, so a supervisor (systemd) restarts the whole server."""
    import os
    import signal

    import uvicorn

    sock = config.bind_socket()
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                services.db.engine.dispose(close=False)  # the parent's pooled connections are not this process's
                uvicorn.Server(config).run(sockets=[sock])
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()

    stopping = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    failed = False
    while children:
        pid, status = os.wait()
        if pid in children:
            children.remove(pid)
            # uvicorn ends a process it was asked to stop by the same signal again; any other end is a failure.
            failed = failed or not (stopping and os.waitstatus_to_exitcode(status) in (0, -signal.SIGTERM))
            if not stopping:
                stop(signal.SIGTERM, None)
    if failed:
        raise SystemExit(1)


def with_page_threads(app, threads: int):
    """The ASGI app, with the server's thread limit set once its event loop runs (a limit belongs to a loop)."""

    async def app_with_threads(scope, receive, send):
        if scope["type"] == "lifespan":
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        await app(scope, receive, send)

    return app_with_threads
