"""The administrator's page: web accounts added, disabled, or given a new password."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request

from safecall import users
from safecall.errors import InputError, NotFoundError
from safecall.services import Services
from safecall.web.deps import CSRF, Admin, Svc, Teams, render

router = APIRouter()


def users_page(
    request: Request, services: Services, teams: list[str], message: str | None = None, error: str | None = None
):
    return render(
        request,
        "users.html",
        accounts=users.list_users(services.db),
        teams=teams,
        roles=users.ROLES,
        message=message,
        error=error,
    )


@router.get("/admin/users")
def user_admin(
    request: Request, services: Svc, teams: Teams, user: Admin, message: str | None = None, error: str | None = None
):
    return users_page(request, services, teams, message, error)


@router.post("/admin/users", dependencies=CSRF)
def user_add(
    request: Request,
    services: Svc,
    teams: Teams,
    user: Admin,
    username: str = Form(...),
    role: str = Form(...),
    team: str = Form(""),
):
    password = users.new_password()
    try:
        users.add_user(
            services.db,
            username.strip(),
            password,
            role=role,
            team=team or None,
            teams=teams,
            now=services.now(),
            actor=f"web:{user.username}",
        )
    except InputError as exc:
        return users_page(request, services, teams, error=str(exc))
    return users_page(request, services, teams, message=f"{username} 계정을 만들었습니다. 처음 비밀번호: {password}")


@router.post("/admin/users/{username}/disable", dependencies=CSRF)
def user_disable(request: Request, services: Svc, teams: Teams, user: Admin, username: str):
    try:
        users.disable_user(services.db, username, now=services.now(), actor=f"web:{user.username}")
    except NotFoundError as exc:
        return users_page(request, services, teams, error=str(exc))
    return users_page(request, services, teams, message=f"{username} 계정을 막았습니다.")


@router.post("/admin/users/{username}/reset", dependencies=CSRF)
def user_reset(request: Request, services: Svc, teams: Teams, user: Admin, username: str):
    password = users.new_password()
    try:
        users.reset_password(services.db, username, password, now=services.now(), actor=f"web:{user.username}")
    except NotFoundError as exc:
        return users_page(request, services, teams, error=str(exc))
    return users_page(request, services, teams, message=f"{username} 새 비밀번호: {password}")
