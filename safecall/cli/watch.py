"""Watching over the people the phone misses: the safety clock, weather-triggered checks and drift."""

from __future__ import annotations

from datetime import timedelta

import typer

from safecall.cli.context import FORMAT_HELP, check_format, emit, group, state
from safecall.domain import TaskKind

weather_app = group(
    "Weather-triggered checks: the Korea Meteorological Administration's heat and cold wave advisories."
)


def report_safety_clock(
    ctx: typer.Context,
    days: int = typer.Option(
        28, "--days", min=1, max=366, help="Tasks closed in the last this many days count too (open ones always do)."
    ),
    longest: int = typer.Option(
        10, "--longest", min=0, max=1000, help="How many of the longest waiting people to list."
    ),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
):
    """The safety clock: time from a person's last unanswered call (or request for help) to an outcome recorded by a human."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    from safecall.safety_clock import RUNG_KOREAN, clocks, hours_text, summarise

    app = state(ctx)
    check_format(fmt)
    services = app.services()
    now = services.now()
    summary = summarise(
        clocks(services.db, services.instance.settings, now=now, since=now - timedelta(days=days)), longest
    )
    tz = services.instance.tz
    records = [
        {
            "task": w.task_id,
            "person": w.person_id,
            "team": w.team,
            "kind": w.kind,
            "started_at": w.started_at.astimezone(tz).isoformat(),
            "waited_seconds": int(w.elapsed.total_seconds()),
            "rung": w.rung,
        }
        for w in summary.longest
    ]
    if fmt == "json":
        emit(
            app,
            fmt,
            [],
            [],
            {
                "tasks": summary.count,
                "waiting": summary.waiting,
                "median_seconds": summary.median and int(summary.median.total_seconds()),
                "p95_seconds": summary.p95 and int(summary.p95.total_seconds()),
                "longest": records,
            },
        )
        return
    if fmt == "table":
        app.say(
            app._("Safety clock over {count} tasks ({waiting} still waiting): median {median}, p95 {p95}.").format(
                count=summary.count,
                waiting=summary.waiting,
                median=hours_text(summary.median),
                p95=hours_text(summary.p95),
            )
        )
    _ = app._
    emit(
        app,
        fmt,
        [_("task"), _("person"), _("team"), _("list"), _("waiting since"), _("waited"), _("escalated to")],
        [
            [
                w.task_id,
                w.name,
                w.team,
                _("call-back") if w.kind == TaskKind.CALLBACK else _("visit"),
                w.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                hours_text(w.elapsed),
                RUNG_KOREAN[w.rung],
            ]
            for w in summary.longest
        ],
        records,
        title=_("Waiting longest"),
    )


@weather_app.command("check")
def weather_check(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Poll and show what would be launched; launch and tell nothing."
    ),
    dial_now: bool = typer.Option(
        False, "--dial/--no-dial", help="Dial the checks launched now (default: the scheduler or workers dial them)."
    ),
):
    """Poll the Korea Meteorological Administration once; an advisory for the office's regions launches a check of the people at higher risk."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    from safecall.cli.context import dial
    from safecall.errors import ConfigError
    from safecall.i18n import N_
    from safecall.weather import build_weather, check_weather

    app = state(ctx)
    services = app.services()
    source = build_weather(services.instance)
    if source is None:
        raise ConfigError(
            N_(
                "weather checks are off: "
                "set [weather] enabled = true, campaign, regions and api_key in config/safecall.toml"
            )
        )
    checks = check_weather(services, source, dry_run=dry_run)
    if not checks:
        app.say(app._("No heat or cold wave advisory for this office's regions."))
    tz = services.instance.tz
    for check in checks:
        advisory = check.advisory
        issued = advisory.issued_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if dry_run:
            line = app._("{advisory} (issued {issued}): would call {people} people at higher risk.")
        elif check.new:
            line = app._(
                "{advisory} (issued {issued}): launched run {run}, a check call to {people} people at higher risk; "
                "officers told."
            )
        elif check.run_id:
            line = app._("{advisory} (issued {issued}): its check was launched before (run {run}).")
        else:
            line = app._("{advisory} (issued {issued}): nobody at higher risk to call.")
        app.say(line.format(advisory=advisory.korean(), issued=issued, people=check.people, run=check.run_id))
        campaign = services.instance.settings.weather.campaign  # set: weather checks on need it (settings.py)
        if check.new and dial_now and campaign and check.run_id is not None:  # a new check has its run
            dial(app, campaign, check.run_id)


def report_drift(ctx: typer.Context, fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """People whose answers changed over the last 8 weeks (변화 감지): rings before answering, seconds to the key, calls needed, unclear or help answers."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    from safecall.drift import MEASURE_KOREAN, drift_flags

    app = state(ctx)
    check_format(fmt)
    flags = drift_flags(app.services().db)
    records = [
        {
            "person": f.person_id,
            "team": f.team,
            "weeks": f.weeks,
            "changes": [{"measure": c.measure, "baseline": c.baseline, "recent": c.recent} for c in f.changes],
        }
        for f in flags
    ]
    if fmt == "json":
        emit(app, fmt, [], [], records)
        return
    _ = app._
    if fmt == "table":
        app.say(_("Change detected (변화 감지): {count} people.").format(count=len(flags)))
    emit(
        app,
        fmt,
        [_("person"), _("team"), _("weeks"), _("what changed (before → last 3 weeks)")],
        [
            [
                f.name,
                f.team,
                f.weeks,
                "; ".join(f"{MEASURE_KOREAN[c.measure]} {c.baseline:g} → {c.recent:g}" for c in f.changes),
            ]
            for f in flags
        ],
        records,
        title=_("Drift watch"),
    )
