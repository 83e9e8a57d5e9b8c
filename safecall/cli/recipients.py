"""The roster: import, list, show, pause, resume, close."""

from __future__ import annotations

from pathlib import Path

import typer

from safecall.cli.context import FORMAT_HELP, AppContext, check_format, emit, group, state
from safecall.commands import parse_day
from safecall.domain import PersonStatus
from safecall.errors import translated
from safecall.i18n import CLOSE_REASON, PERSON_STATUS
from safecall.terminal import add_row, table

recipients_app = group("The roster of people who are called.")


@recipients_app.command("import")
def recipients_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV (UTF-8 or CP949) or XLSX roster."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; change nothing."),
):
    """Import or update the roster; all or nothing."""
    from safecall.roster import import_roster  # the store and the table readers: not for --help

    app = state(ctx)
    services = app.services()
    report = import_roster(
        services.db, file, services.instance.settings, now=services.now(), today=services.today(), dry_run=dry_run
    )
    message = (
        app._("Would import {rows} rows from {file}: {added} added, {updated} updated, {unchanged} unchanged.")
        if dry_run
        else app._("Imported {rows} rows from {file}: {added} added, {updated} updated, {unchanged} unchanged.")
    )
    app.say(
        message.format(
            rows=report.rows, file=file, added=report.added, updated=report.updated, unchanged=report.unchanged
        )
    )
    if report.moved_tasks:
        moved = (
            app._("{count} open task(s) would move with their person to the new dong's team.")
            if dry_run
            else app._("{count} open task(s) moved with their person to the new dong's team.")
        )
        app.say(moved.format(count=report.moved_tasks))
    if report.ignored_columns:
        app.say(app._("Ignored columns: {columns}").format(columns=", ".join(report.ignored_columns)))
    if report.without_consent:
        app.say(app._("{count} without consent (stored, never called):").format(count=len(report.without_consent)))
        for line in report.without_consent:
            app.say(f"  {translated(line, app._)}")


def person_state(app: AppContext, p) -> str:
    words = app.texts.word("status", p.status)
    if p.paused_until:
        words += app._(" until {day}").format(day=p.paused_until)
    if p.closed_reason:
        words += f" ({app.texts.word('reason', p.closed_reason)})"
    elif p.status == PersonStatus.ACTIVE and (p.consent_date is None or p.consent_date > app.services().today()):
        words += app._(" (no consent: not called)")  # on the roster, but no run calls them (as the import said)
    return words


@recipients_app.command("list")
def recipients_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, help="active (안심콜 이용 중).\n\npaused (일시 중지).\n\nclosed (종료)."),
    team: str | None = typer.Option(None, help="Only this team."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
):
    """List people on the roster."""
    from safecall import people, phones  # the store: not for --help
    from safecall.audit import log_access

    app = state(ctx)
    check_format(fmt)
    wanted = app.texts.keyword(status, "status", PERSON_STATUS, "--status") if status else None
    services = app.services()
    rows = people.list_people(services.db, status=wanted, team=team)
    log_access(
        services.db,
        at=services.now(),
        action="recipients.view",
        subject=f"roster {team or 'all teams'}",
        detail=f"status={wanted or 'any'} people={len(rows)}",
    )
    _ = app._
    emit(
        app,
        fmt,
        [_("id"), _("name"), _("phone"), _("dong"), _("team"), _("risk"), _("consent"), _("status")],
        [
            [
                p.id,
                p.name,
                phones.national(p.phone),
                p.dong,
                p.team,
                app.texts.risk(p.risk),
                p.consent_date or _("none"),
                person_state(app, p),
            ]
            for p in rows
        ],
        [
            {
                "id": p.id,
                "name": p.name,
                "phone": phones.national(p.phone),
                "phone2": phones.national(p.phone2),
                "dong": p.dong,
                "team": p.team,
                "risk": p.risk,
                "consent_date": p.consent_date,
                "status": p.status,
                "paused_until": p.paused_until,
                "closed_reason": p.closed_reason,
            }
            for p in rows
        ],
        whole=(0, 2, 6),
    )
    if fmt == "table":
        app.say(app._("{count} people").format(count=len(rows)))


@recipients_app.command("show")
def recipients_show(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
    """Show one person and every call made to them."""
    from safecall import people, phones  # the store: not for --help
    from safecall.audit import log_access

    app = state(ctx)
    _ = app._
    services = app.services()
    p, attempts = people.person_history(services.db, person)
    log_access(services.db, at=services.now(), action="person.view", subject=f"person {p.id}")
    tz = services.instance.tz
    for label, value in (
        (_("id"), p.id),
        (_("name"), p.name),
        (_("phone"), phones.national(p.phone)),
        (_("phone2"), phones.national(p.phone2)),
        (_("address"), p.address),
        (_("dong"), p.dong),
        (_("team"), p.team),
        (_("birth date"), p.birth_date),
        (_("guardian"), f"{p.guardian_name or ''} {phones.national(p.guardian_phone)}".strip()),
        (_("consent"), p.consent_date or _("none")),
        (_("risk"), app.texts.risk(p.risk)),
        (_("status"), person_state(app, p)),
    ):
        app.say(f"{label}: {value}")
    grid = table(_("run"), _("attempt"), _("placed"), _("number"), _("result"), whole=(2, 3))
    for a in attempts:
        add_row(
            grid,
            [
                a.run_id,
                a.number,
                a.placed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                phones.national(a.phone),
                people.attempt_result(a, app.texts),
            ],
        )  # a spoken answer is data: add_row renders it as plain text
    app.out.print(grid)


@recipients_app.command("pause")
def recipients_pause(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Id or exact name."),
    until: str = typer.Option(..., "--until", help="Last day of the pause, YYYY-MM-DD."),
):
    """Stop calling someone until a date (e.g. a hospital stay)."""
    from safecall import people  # the store: not for --help

    app = state(ctx)
    services = app.services()
    p = people.pause(services.db, person, until=parse_day(until, "--until"), today=services.today(), now=services.now())
    app.say(app._("Paused {name} (id {id}) until {day}.").format(name=p.name, id=p.id, day=p.paused_until))


@recipients_app.command("resume")
def recipients_resume(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
    """Call someone again."""
    from safecall import people  # the store: not for --help

    app = state(ctx)
    services = app.services()
    p = people.resume(services.db, person, now=services.now())
    app.say(app._("Resumed {name} (id {id}).").format(name=p.name, id=p.id))


@recipients_app.command("close")
def recipients_close(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Id or exact name."),
    reason: str = typer.Option(
        ..., "--reason", help="hospitalised, moved, deceased, declined or other (입원, 이사, 사망, 거부, 기타)."
    ),
):
    """Take someone off the calls for good."""
    from safecall import people  # the store: not for --help

    app = state(ctx)
    chosen = app.texts.keyword(reason, "reason", CLOSE_REASON, "--reason")
    services = app.services()
    p = people.close(services.db, person, reason=chosen, now=services.now())
    app.say(
        app._("Closed {name} (id {id}): {reason}.").format(
            name=p.name, id=p.id, reason=app.texts.word("reason", chosen)
        )
    )
