"""Logging in and out, and the home page that sends each role to its own list."""

from __future__ import annotations

import functools

import anyio.to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from safecall import users
from safecall.web.auth import log_in
from safecall.web.deps import CSRF, Svc, User, codec_of, logged, render, session_of, sessions_of, set_cookie

router = APIRouter()


@router.get("/login")
async def login_page(request: Request):  # async: no database, and the form must not queue behind pages for a thread
    return render(request, "login.html")


@router.post("/login", dependencies=CSRF)
async def login(request: Request, services: Svc, username: str = Form(""), password: str = Form("")):
    # Async, so a login waiting for a login thread holds no page thread: other pages go on being served.
    shared = request.app.state  # the app's: this request's own state is request.state
    address = request.client.host if request.client else "?"
    username = users.normalise_username(username)
    # The whole login is one call on a login thread (auth.log_in): the reservation taken there counts checks in
    # flight as well as failures, so people logging in at once from one office address (behind one NAT) must not
    # add up to a limit meant for failures.
    outcome = await anyio.to_thread.run_sync(
        functools.partial(
            log_in,
            services.db.root,  # the session store's own short transactions: no lock held across the password hash
            shared.limiter,
            sessions_of(request),
            username,
            password,
            address,
            hasher=shared.hasher,
            now=services.now,
        ),
        limiter=shared.login_threads,
    )
    if outcome.refused:
        return render(
            request, "login.html", status_code=429, error="로그인 실패가 너무 많습니다. 잠시 후 다시 시도하세요."
        )
    if outcome.user is None:
        return render(request, "login.html", status_code=401, error="아이디 또는 비밀번호가 맞지 않습니다.")
    request.state.session = codec_of(request).new(outcome.token)  # a new session (and CSRF token) at login
    request.state.new_cookie = True
    return RedirectResponse("/", status_code=303)


@router.post("/logout", dependencies=CSRF)
def logout(request: Request, services: Svc):
    sessions = sessions_of(request)
    token = session_of(request).token
    user = sessions.user(token)
    sessions.end(token)  # on the server: a copy of the cookie is no session any more
    if user:
        logged(services, user, "web.logout", f"user {user.username}")
    response = RedirectResponse("/login", status_code=303)
    set_cookie(request, response, None)
    request.state.session = None
    return response


@router.get("/")
def home(user: User):
    target = {"team": f"/team/{user.team}", "officer": "/callbacks", "admin": "/admin/users"}[user.role]
    return RedirectResponse(target, status_code=303)
