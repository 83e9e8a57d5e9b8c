"""The `safecall` command: each command parses its arguments, calls one library function and prints.

Commands are module-level functions in Typer groups, one module a group (recipients, campaign, visits, ...);
`create_app` here puts them under the root command, and injects the clock factory and environment through
Click's context object, so tests can pass their own.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from safecall.cli import campaign, checkin, instance, office, processes, recipients, visits, watch, web
from safecall.cli.context import AppContext, Injected, SafeCallGroup
from safecall.clock import Clock, SystemClock

GROUPS = {
    "worker": processes.worker_app,
    "db": instance.db_app,
    "recipients": recipients.recipients_app,
    "campaign": campaign.campaign_app,
    "visits": visits.visits_app,
    "config": instance.config_app,
    "trunk": instance.trunk_app,
    "ivr": office.ivr_app,
    "scheduler": processes.scheduler_app,
    "signals": office.signals_app,
    "report": office.report_app,
    "users": web.users_app,
    "audit": web.audit_app,
    "upgrade": instance.upgrade_app,
    "checkin": checkin.checkin_app,
    "weather": watch.weather_app,
}
# The watch's reports join the office's report group here, so that neither group module imports the other.
office.report_app.command("safety-clock")(watch.report_safety_clock)
office.report_app.command("drift")(watch.report_drift)


def root_options(
    ctx: typer.Context,
    config_path: str | None = typer.Option(
        None,
        "--config",
        help="Instance folder (or its config/safecall.toml). Default: $SAFECALL_CONFIG, else the current folder.",
    ),
):
    # Real commands run on the real clock; a drill takes its own --now and plays on a copy of the data.
    injected: Injected = ctx.obj
    ctx.obj = AppContext(make_clock=injected.make_clock, environ=injected.env(), config_option=config_path)
    ctx.call_on_close(ctx.obj.close)


def create_app(make_clock: Callable[[], Clock] = SystemClock, environ: dict | None = None) -> typer.Typer:
    """The root command over the groups; tests pass their own clock factory and environment."""
    root = typer.Typer(
        cls=SafeCallGroup,
        help="SafeCall: weekly automated wellness-check calls (안심콜).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"obj": Injected(make_clock, environ)},
    )
    root.callback()(root_options)
    for command in (
        instance.init,
        instance.demo,
        instance.doctor,
        instance.serve,
        campaign.drill,
        web.web,
        instance.backup,
        instance.restore,
    ):
        root.command()(command)
    for name, sub in GROUPS.items():
        root.add_typer(sub, name=name)
    return root


def main() -> None:
    create_app()(prog_name="safecall")
