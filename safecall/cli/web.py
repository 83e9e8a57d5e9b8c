"""The web app, its accounts and the audit trail: thin commands over safecall/web, users.py and audit.py."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import typer

from safecall.commands import parse_day


from safecall.cli.context import AppContext, state, emit, check_format, FORMAT_HELP, group



users_app = group("Accounts of the web app (`safecall web`): visit team members, officers, admins.")


def web(ctx: typer.Context, host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: [web] host, 127.0.0.1)."),
        port: Optional[int] = typer.Option(None, "--port", help="Port (default: [web] port, 8080).")):
    """Serve the web pages for visit teams and officers; put a TLS reverse proxy in front (docs/web.md)."""
    from safecall.web import serve

    serve(state(ctx).services(), host=host, port=port)


def password_for(from_stdin: bool) -> str:
    """The password read from standard input, or a new one (printed once by the command)."""
    from safecall import users

    return typer.get_text_stream("stdin").readline().rstrip("\n") if from_stdin else users.new_password()


def say_password(app: AppContext, password: str) -> None:
    app.say(app._("Password (shown once; hand it over in person): {password}").format(password=password))


@users_app.command("add")
def users_add(ctx: typer.Context, username: str = typer.Argument(..., help="Login name."),
              role: str = typer.Option(..., "--role", help="team (a visit team member), officer or admin."),
              team: Optional[str] = typer.Option(None, "--team", help="The team of a team member."),
              password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input (default: make one and print it once).")):
    """Create a web account."""
    from safecall import users

    app = state(ctx)
    services = app.services()
    password = password_for(password_stdin)
    user = users.add_user(services.db, username, password, role=role, team=team, teams=[t.name for t in services.instance.settings.teams],
                          now=services.now())
    app.say(app._("Created {user} ({role}{team}).").format(user=user.username, role=role, team=", " + team if team else ""))
    if not password_stdin:
        say_password(app, password)


@users_app.command("list")
def users_list(ctx: typer.Context, fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """List web accounts."""
    from safecall import users

    check_format(fmt)
    app = state(ctx)
    _ = app._
    accounts = users.list_users(app.services().db)
    emit(app, fmt, [_("user"), _("role"), _("team"), _("status"), _("created")],
         [[u.username, u.role, u.team or "", _("disabled") if u.disabled else app.texts.word("status", "active"), u.created_at.date()]
          for u in accounts],
         [{"user": u.username, "role": u.role, "team": u.team, "disabled": bool(u.disabled), "created": u.created_at.isoformat()}
          for u in accounts])


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: str = typer.Argument(..., help="Login name.")):
    """Stop an account from logging in; its open sessions end."""
    from safecall import users

    app = state(ctx)
    services = app.services()
    users.disable_user(services.db, username, now=services.now())
    app.say(app._("Disabled {user}; its sessions have ended.").format(user=username))


@users_app.command("reset")
def users_reset(ctx: typer.Context, username: str = typer.Argument(..., help="Login name."),
                password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from standard input (default: make one and print it once).")):
    """Give an account a new password (and enable it again); its open sessions end."""
    from safecall import users

    app = state(ctx)
    services = app.services()
    password = password_for(password_stdin)
    users.reset_password(services.db, username, password, now=services.now())
    app.say(app._("Reset the password of {user}.").format(user=username))
    if not password_stdin:
        say_password(app, password)


def audit(ctx: typer.Context, actor: Optional[str] = typer.Option(None, "--actor", help="e.g. web:kim or os:root(uid 0)."),
          action: Optional[str] = typer.Option(None, "--action", help="e.g. visit.record, or web.* for every web action."),
          subject: Optional[str] = typer.Option(None, "--subject", help="e.g. 'task 12' or 'person 3'."),
          since: Optional[str] = typer.Option(None, "--since", help="Written on or after this day, YYYY-MM-DD (real time)."),
          until: Optional[str] = typer.Option(None, "--until", help="Written before this day, YYYY-MM-DD (real time)."),
          limit: int = typer.Option(200, "--limit", min=1, help="At most this many, newest first."),
          fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """Show the audit trail: who did what, the time it was for, and the real time it was written."""
    from safecall.audit import audit_events

    check_format(fmt)
    app = state(ctx)
    _ = app._
    services = app.services()
    tz = services.instance.tz
    start = lambda text, option: datetime.combine(parse_day(text, option), datetime.min.time(), tzinfo=tz)
    events = audit_events(services.db, actor=actor, action=action, subject=subject, limit=limit,
                          since=start(since, "--since") if since else None, until=start(until, "--until") if until else None)
    seconds = lambda moment: moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    emit(app, fmt, [_("id"), _("written (real time)"), _("for (the clock's time)"), _("actor"), _("action"), _("subject"), _("detail")],
         [[e.id, seconds(e.real_at) if e.real_at else _("(before schema 5)"), seconds(e.at), e.actor, e.action, e.subject, e.detail]
          for e in events],
         [{"id": e.id, "real_at": e.real_at.isoformat() if e.real_at else None, "at": e.at.isoformat(), "actor": e.actor,
           "action": e.action, "subject": e.subject, "detail": e.detail} for e in events], whole=(0, 1, 2))
    if fmt == "table":
        app.say(_("{count} records").format(count=len(events)))


