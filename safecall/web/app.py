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
    app.middleware("http")(headers_and_cookie)
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


async def headers_and_cookie(request: Request, call_next):
    response = await call_next(request)
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    session = getattr(request.state, "session", None)
    if session is not None and getattr(request.state, "new_cookie", False):
        set_cookie(request, response, session)
    return response


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


def serve(services: Services, *, host: str | None = None, port: int | None = None) -> None:
    """Run the app under uvicorn until interrupted; 127.0.0.1 unless the settings or `host` say otherwise."""
    import uvicorn

    from safecall.events import uvicorn_log_config

    web = services.instance.settings.web
    try:
        app = create_web_app(services, web.secret_key.resolve(services.instance.environ))
    except ValueError as exc:  # a secret too short to sign sessions with
        raise ConfigError(f"config/safecall.toml: key 'web.secret_key' ({web.secret_key.describe()}): {exc}") from exc
    # Behind the TLS proxy on the same machine: the client address comes from its X-Forwarded-For.
    uvicorn.run(
        with_page_threads(app, PAGE_THREADS),
        host=host or web.host,
        port=port or web.port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
        log_level="info",
        log_config=uvicorn_log_config(("uvicorn", "uvicorn.error", "uvicorn.access", "safecall")),
    )


def with_page_threads(app, threads: int):
    """The ASGI app, with the server's thread limit set once its event loop runs (a limit belongs to a loop)."""

    async def app_with_threads(scope, receive, send):
        if scope["type"] == "lifespan":
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        await app(scope, receive, send)

    return app_with_threads
