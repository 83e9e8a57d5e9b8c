"""The web app, its accounts and the audit trail: thin commands over safecall/web, users.py and audit.py."""

from __future__ import annotations

from datetime import datetime

import typer

from safecall.cli.context import FORMAT_HELP, AppContext, check_format, emit, group, state
from safecall.commands import parse_day
from safecall.errors import translated
from safecall.i18n import ROLE

users_app = group("Accounts of the web app (`safecall web`): visit team members, officers, admins.")


def web(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to listen on (default: [web] host, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: [web] port, 8080)."),
    workers: int = typer.Option(
        1, "--workers", min=1, max=16, help="Processes serving pages: one uses one CPU core at most (docs/web.md)."
    ),
):
    """Serve the web pages for visit teams and officers; put a TLS reverse proxy in front (docs/web.md)."""
    from safecall.web.app import serve

    serve(state(ctx).services(), host=host, port=port, workers=workers)


def password_for(from_stdin: bool) -> str:
    """The password read from standard input, or a new one (printed once by the command)."""
    from safecall import users

    return typer.get_text_stream("stdin").readline().rstrip("\n") if from_stdin else users.new_password()


def say_password(app: AppContext, password: str) -> None:
    app.say(app._("Password (shown once; hand it over in person): {password}").format(password=password))


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(
        ..., "--role", help="team (방문팀원): a visit team member.\n\nofficer (담당 공무원).\n\nadmin (관리자)."
    ),
    team: str | None = typer.Option(None, "--team", help="The team of a team member."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (default: make one and print it once)."
    ),
):
    """Create a web account."""
    from safecall import users

    app = state(ctx)
    role = app.texts.keyword(role, "role", ROLE, "--role")
    services = app.services()
    password = password_for(password_stdin)
    user = users.add_user(
        services.db,
        username,
        password,
        role=role,
        team=team,
        teams=[t.name for t in services.instance.settings.teams],
        now=services.now(),
    )
    app.say(
        app._("Created {user} ({role}{team}).").format(
            user=user.username, role=app.texts.word("role", role), team=", " + team if team else ""
        )
    )
    if not password_stdin:
        say_password(app, password)


@users_app.command("list")
def users_list(ctx: typer.Context, fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """List web accounts."""
    from safecall import users

    check_format(fmt)
    app = state(ctx)
    _ = app._
    services = app.services()
    accounts = users.list_users(services.db)
    emit(
        app,
        fmt,
        [_("user"), _("role"), _("team"), _("status"), _("created")],
        [
            [
                u.username,
                app.texts.word("role", u.role),
                u.team or "",
                _("disabled") if u.disabled else app.texts.word("status", "active"),
                u.created_at.astimezone(services.instance.tz).date(),
            ]
            for u in accounts
        ],
        [
            {
                "user": u.username,
                "role": u.role,
                "team": u.team,
                "disabled": bool(u.disabled),
                "created": u.created_at.isoformat(),
            }
            for u in accounts
        ],
    )


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: str = typer.Argument(..., help="Login name.")):
    """Stop an account from logging in; its open sessions end."""
    from safecall import users

    app = state(ctx)
    services = app.services()
    users.disable_user(services.db, username, now=services.now())
    app.say(app._("Disabled {user}; its sessions have ended.").format(user=username))


@users_app.command("reset")
def users_reset(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name."),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read the new password from standard input (default: make one and print it once).",
    ),
):
    """Give an account a new password (and enable it again); its open sessions end."""
    from safecall import users

    app = state(ctx)
    services = app.services()
    password = password_for(password_stdin)
    users.reset_password(services.db, username, password, now=services.now())
    app.say(app._("Reset the password of {user}.").format(user=username))
    if not password_stdin:
        say_password(app, password)


def audit_words(text: str, texts) -> str:
    """An audit record's subject or detail as people read it ('task 12' is 과제 12); stored and searched in English."""
    import re

    from safecall import glossary

    if texts.lang == "en":
        return text
    text = re.sub(r"^(task|person|run|user|roster) ", lambda m: glossary.AUDIT_SUBJECT[m.group(1)] + " ", text)
    text = re.sub(r"^(visit|callback|number) list ", lambda m: f"{glossary.LIST_KIND[m.group(1)]} 명단 ", text)
    text = text.replace("all teams", glossary.ALL_TEAMS)
    return re.sub(r"\boutcome=(\w+)", lambda m: "결과=" + glossary.OUTCOME.get(m.group(1), m.group(1)), text)


audit_app = typer.Typer(
    help="Show the audit trail, check its chain (--verify), or print a month's access review.",
    invoke_without_command=True,
)


@audit_app.callback()
def audit(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor", help="e.g. web:kim or os:root(uid 0)."),
    action: str | None = typer.Option(None, "--action", help="e.g. visit.record, or web.* for every web action."),
    subject: str | None = typer.Option(None, "--subject", help="e.g. 'task 12' or 'person 3'."),
    since: str | None = typer.Option(None, "--since", help="Written on or after this day, YYYY-MM-DD (real time)."),
    until: str | None = typer.Option(None, "--until", help="Written before this day, YYYY-MM-DD (real time)."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many, newest first."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
    verify: bool = typer.Option(False, "--verify", help="Check the hash chain: every edited or deleted row is named."),
):
    """Show the audit trail: who did what, the time it was for, and the real time it was written."""
    if ctx.invoked_subcommand is not None:
        return
    from safecall.audit import (
        audit_events,
        verify_chain,
    )  # the store: not for `audit review --help`, which runs this first

    check_format(fmt)
    app = state(ctx)
    _ = app._
    services = app.services()
    if verify:
        report = verify_chain(services.db)
        say_chain(app, report)
        if not report.ok:
            raise typer.Exit(1)
        return
    tz = services.instance.tz

    def start(text: str, option: str) -> datetime:
        return datetime.combine(parse_day(text, option), datetime.min.time(), tzinfo=tz)

    events = audit_events(
        services.db,
        actor=actor,
        action=action,
        subject=subject,
        limit=limit,
        since=start(since, "--since") if since else None,
        until=start(until, "--until") if until else None,
    )

    def seconds(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    emit(
        app,
        fmt,
        [
            _("id"),
            _("written (real time)"),
            _("for (the clock's time)"),
            _("actor"),
            _("action"),
            _("subject"),
            _("detail"),
        ],
        [
            [
                e.id,
                seconds(e.real_at) if e.real_at else _("(before schema 5)"),
                seconds(e.at),
                e.actor,
                e.action,
                audit_words(e.subject, app.texts),
                audit_words(e.detail, app.texts),
            ]
            for e in events
        ],
        [
            {
                "id": e.id,
                "real_at": e.real_at.isoformat() if e.real_at else None,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            }
            for e in events
        ],
        whole=(0, 1, 2),
    )
    if fmt == "table":
        app.say(_("{count} records").format(count=len(events)))


def say_chain(app: AppContext, report) -> None:
    if report.ok:
        app.say(
            app._("Audit chain: {rows} rows, none changed or deleted; last hash {head}").format(
                rows=report.rows, head=report.head or "-"
            )
        )
        return
    app.say(app._("Audit chain: {count} problems in {rows} rows").format(count=len(report.problems), rows=report.rows))
    for problem in report.problems:
        app.say("  - " + translated(problem, app._))


@audit_app.command("review")
def audit_review(
    ctx: typer.Context, month: str = typer.Option(..., "--month", help="The month to review, YYYY-MM (local time).")
):
    """The monthly access review: who read or exported personal data, logins, failed logins, account changes."""
    from safecall.audit import access_review

    app = state(ctx)
    _ = app._
    services = app.services()
    review = access_review(services.db, month, services.instance.tz)
    app.say(
        _("Access review for {month} ({zone}), from the audit trail").format(
            month=review.month, zone=services.instance.settings.timezone
        )
    )
    app.say("")
    app.say(_("Personal data read or exported"))

    def shown(subjects: set[str]) -> str:
        return ", ".join(sorted(subjects)[:8]) + (f" … (+{len(subjects) - 8})" if len(subjects) > 8 else "")

    emit(
        app,
        "table",
        [_("actor"), _("views"), _("exports"), _("what")],
        [[a.actor, a.views, a.exports, shown(a.subjects)] for a in review.access],
        [],
    )
    app.say("")
    app.say(_("Logins"))
    emit(
        app, "table", [_("actor"), _("logins")], [[actor, count] for actor, count in sorted(review.logins.items())], []
    )
    app.say("")
    app.say(_("Failed logins (passwords checked)"))
    emit(
        app,
        "table",
        [_("user name typed"), _("from"), _("failures")],
        [
            [name, address, count]
            for (name, address), count in sorted(review.failures.items(), key=lambda item: -item[1])
        ],
        [],
    )
    app.say(_("Logins refused over the limit: {count}").format(count=review.refused))
    app.say("")
    app.say(_("Account changes"))
    tz = services.instance.tz
    emit(
        app,
        "table",
        [_("written (real time)"), _("actor"), _("action"), _("subject")],
        [
            [(e.real_at or e.at).astimezone(tz).strftime("%Y-%m-%d %H:%M"), e.actor, e.action, e.subject]
            for e in review.account_changes
        ],
        [],
    )
    app.say("")
    say_chain(app, review.chain)
