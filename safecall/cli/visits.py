"""The teams' home-visit and call-back lists, their delivery, and visit outcomes."""

from __future__ import annotations

from pathlib import Path

import typer

from safecall.cli.context import FORMAT_HELP, AppContext, check_format, emit, group, state
from safecall.commands import parse_day
from safecall.domain import SendStatus, TaskStatus
from safecall.i18n import CALLBACK_OUTCOME, LIST_KIND, N_, NUMBER_OUTCOME, OUTCOME
from safecall.terminal import json_text, markup_safe

visits_app = group("Home-visit and callback lists for the teams.")


@visits_app.command("list")
def visits_list(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--date", help="The day of the list, YYYY-MM-DD (default: today)."),
    team: str | None = typer.Option(None, "--team", help="Only this team."),
    kind: str = typer.Option(
        "visit",
        "--kind",
        help="visit (방문): home visits.\n\ncallback (회신): people who pressed 2.\n\n"
        "number (번호 확인): a number to fix.",
    ),
    fmt: str = typer.Option("table", "--format", help="table, json, or a file: csv or xlsx."),
    output: Path | None = typer.Option(
        None, "--output", help="A .csv/.xlsx file, or a folder for one file per team (default: the outbox)."
    ),
):
    """The open home-visit (or callback) list, one per team, most urgent first."""
    from safecall.audit import log_access  # the store: loaded by the command, not by --help
    from safecall.visits import COLUMNS, export_lists, open_task_rows

    app = state(ctx)
    _ = app._
    check_format(fmt, ("table", "json", "csv", "xlsx"))
    kind = app.texts.keyword(kind, "kind", LIST_KIND, "--kind")
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    lists = open_task_rows(
        services.db,
        services.instance.tz,
        on=day,
        kind=kind,
        team=team,
        teams=[t.name for t in services.instance.settings.teams],
    )
    log_access(
        services.db,
        at=services.now(),
        action="visits.export" if fmt != "table" else "visits.view",
        subject=f"{kind} list {team or 'all teams'}",
        detail=f"day={day} format={fmt}",
    )
    kind_word = app.texts.word("kind", kind)
    if fmt == "json":
        typer.echo(
            json_text(
                {
                    team_name: [dict(zip([key for key, _title in COLUMNS], r.cells(), strict=True)) for r in rows]
                    for team_name, rows in lists.items()
                }
            ),
            nl=False,
        )
        return
    if fmt == "table":
        for team_name, rows in lists.items():
            if not rows:  # said in a line: an empty table reads like a list that failed to load
                app.say(_("{team}: no open {kind} tasks for {day}.").format(team=team_name, kind=kind_word, day=day))
                continue
            moved = any(r.moved_from for r in rows)  # "3팀에서 이관": a column only on a list that has such a task
            emit(
                app,
                fmt,
                [
                    _("#"),
                    _("task"),
                    _("name"),
                    _("phone"),
                    _("address"),
                    _("dong"),
                    _("guardian"),
                    _("reason"),
                    _("earlier visit notes"),
                    _("risk"),
                    _("last ack"),
                ]
                + [_("moved")] * moved,
                [
                    [
                        r.rank,
                        r.task,
                        f"{r.name} ({r.risk_speech})" if r.risk_speech else r.name,
                        r.phone,
                        r.address,
                        r.dong,
                        f"{r.guardian} {r.guardian_phone}".strip(),
                        r.reason,
                        r.notes,
                        r.risk,
                        r.last_ack,
                    ]
                    + [r.moved_from] * moved
                    for r in rows
                ],
                [],
                title=_("{team}: {count} {kind}(s) for {day}").format(
                    team=team_name, count=len(rows), kind=kind_word, day=day
                ),
                whole=(0, 1, 3, 10),
            )
        if not lists:
            app.say(_("No open {kind} tasks for {day}.").format(kind=kind_word, day=day))
        return
    files = export_lists(lists, output=output or services.instance.outbox / day.isoformat(), fmt=fmt, on=day, kind=kind)
    for path in files:
        app.say(_("wrote {path}").format(path=path))
    if not files:
        app.say(_("No open {kind} tasks for {day}; nothing written.").format(kind=kind_word, day=day))


@visits_app.command("deliver")
def visits_deliver(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--date", help="Day of the lists, YYYY-MM-DD (default: today)."),
):
    """Write the day's lists again and (re)send them to every team."""
    from safecall.delivery import deliveries_for, publish_day
    from safecall.notify import build_mailer

    app = state(ctx)
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    publish_day(services.db, services.instance, build_mailer(services.instance), day, now=services.now(), resend=True)
    print_deliveries(app, deliveries_for(services.db, day), day)


@visits_app.command("deliveries")
def visits_deliveries(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--date", help="Day, YYYY-MM-DD (default: today)."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
):
    """Show whether each team's lists for a day were delivered."""
    from safecall.delivery import deliveries_for

    app = state(ctx)
    check_format(fmt)
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    print_deliveries(app, deliveries_for(services.db, day), day, fmt)


def print_deliveries(app: AppContext, rows, day, fmt: str = "table") -> None:
    _ = app._
    emit(
        app,
        fmt,
        [_("team"), _("list"), _("status"), _("attempts"), _("last error")],
        [
            [
                d.team,
                app.texts.word("kind", d.list_kind),
                app.texts.word("delivery", d.status),
                d.attempts,
                d.last_error or "",
            ]
            for d in rows
        ],
        [
            {
                "team": d.team,
                "kind": d.list_kind,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
            }
            for d in rows
        ],
        title=_("Deliveries for {day}").format(day=day),
    )
    if any(d.status == SendStatus.FAILED for d in rows):
        warning = _("some lists were not delivered; fix the cause and run 'safecall visits deliver'")
        app.err.print("[red]" + markup_safe(warning) + "[/red]")


@visits_app.command("record")
def visits_record(
    ctx: typer.Context,
    task: int = typer.Argument(..., help="Task number from the list."),
    outcome: str = typer.Option(
        ...,
        "--outcome",
        help="A visit:\n\nsafe (안전 확인)\n\nnot_home (부재)\n\nhospitalised (입원)\n\n"
        "emergency_services (119 인계)\n\n"
        "deceased (사망)\n\nmoved (이사)\n\nA call-back:\n\ncalled_safe (통화함: 안전 확인)\n\n"
        "called_referred (통화함: 서비스 연계)\n\ncalled_no_answer (통화 안 됨)\n\nA number to fix:\n\n"
        "number_fixed (번호 수정함)",
    ),
    note: str | None = typer.Option(None, "--note", help="What the team saw."),
    until: str | None = typer.Option(
        None, "--until", help="hospitalised: pause calls until this day (at most 180 days ahead)."
    ),
    long_stay: bool = typer.Option(
        False,
        "--long-stay",
        help="hospitalised: the welfare officer's decision to pause calls beyond 180 days (a year at most).",
    ),
):
    """Record what a visit (or an officer's call-back) found; not_home and called_no_answer keep the task open."""
    from safecall.visits import record_outcome  # the store: loaded by the command, not by --help

    app = state(ctx)
    chosen = app.texts.keyword(outcome, "outcome", OUTCOME + CALLBACK_OUTCOME + NUMBER_OUTCOME, "--outcome")
    pause_until = parse_day(until, "--until") if until else None
    services = app.services()
    recorded = record_outcome(
        services.db,
        task,
        chosen,
        now=services.now(),
        tz=services.instance.tz,
        note=note,
        until=pause_until,
        officer=long_stay,
        officer_hint=N_("if the welfare officer decided it, add --long-stay"),
    )
    still = app._("still open (not home)") if recorded.status == TaskStatus.OPEN else app._("closed")
    app.say(
        app._("Task {task}: {outcome}; {state}.").format(
            task=task, outcome=app.texts.word("outcome", chosen), state=still
        )
    )
