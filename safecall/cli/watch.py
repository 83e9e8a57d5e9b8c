"""Watching over the people the phone misses: the safety clock, weather-triggered checks and drift."""

from __future__ import annotations

from datetime import timedelta

import typer

from safecall.cli.context import FORMAT_HELP, check_format, emit, group, state
from safecall.cli.office import report_app

weather_app = group("Weather-triggered checks: the Korea Meteorological Administration's heat and cold wave advisories.")


@report_app.command("safety-clock")
def report_safety_clock(ctx: typer.Context,
                        days: int = typer.Option(28, "--days", min=1, max=366, help="Tasks closed in the last this many days count too (open ones always do)."),
                        longest: int = typer.Option(10, "--longest", min=0, max=1000, help="How many of the longest waiting people to list."),
                        fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """The safety clock: time from a person's last unanswered call (or request for help) to an outcome recorded by a human."""
    from safecall.safety_clock import RUNG_KOREAN, clocks, hours_text, summarise

    app = state(ctx)
    check_format(fmt)
    services = app.services()
    now = services.now()
    summary = summarise(clocks(services.db, services.instance.settings, now=now, since=now - timedelta(days=days)), longest)
    tz = services.instance.tz
    records = [{"task": w.task_id, "person": w.person_id, "team": w.team, "kind": w.kind,
                "started_at": w.started_at.astimezone(tz).isoformat(), "waited_seconds": int(w.elapsed.total_seconds()),
                "rung": w.rung} for w in summary.longest]
    if fmt == "json":
        emit(app, fmt, [], [], {"tasks": summary.count, "waiting": summary.waiting,
                                "median_seconds": summary.median and int(summary.median.total_seconds()),
                                "p95_seconds": summary.p95 and int(summary.p95.total_seconds()), "longest": records})
        return
    if fmt == "table":
        app.say(app._("Safety clock over {count} tasks ({waiting} still waiting): median {median}, p95 {p95}.").format(
            count=summary.count, waiting=summary.waiting, median=hours_text(summary.median), p95=hours_text(summary.p95)))
    _ = app._
    emit(app, fmt, [_("task"), _("person"), _("team"), _("list"), _("waiting since"), _("waited"), _("escalated to")],
         [[w.task_id, w.name, w.team, _("call-back") if w.kind == "callback" else _("visit"),
           w.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), hours_text(w.elapsed), RUNG_KOREAN[w.rung]]
          for w in summary.longest], records, title=_("Waiting longest"))
