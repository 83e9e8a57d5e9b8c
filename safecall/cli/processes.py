"""Long-running processes: the scheduler and scale-out dialer workers."""

from __future__ import annotations

import typer

from safecall import commands
from safecall.cli.context import group, state

scheduler_app = group("The long-running process that launches, dials and delivers.")
worker_app = group("Scale-out dialer workers sharing a PostgreSQL database (docs/scaling.md).")


@scheduler_app.command("run")
def scheduler_run(
    ctx: typer.Context,
    interval: float = typer.Option(30, "--interval", help="Seconds between checks."),
    dial_runs: bool = typer.Option(
        True, "--dial/--no-dial", help="--no-dial: leave dialling to `safecall worker run` processes."
    ),
    seconds: float | None = typer.Option(
        None, "--seconds", help="Stop after this long (default: until SIGTERM/SIGINT)."
    ),
):
    """Launch campaigns at their weekly slot, dial, publish the daily lists, escalate; survives restarts."""
    from safecall.notify import build_mailer, build_sms
    from safecall.scheduler import Scheduler

    services = state(ctx).services()
    mailer = build_mailer(services.instance)
    runner = Scheduler(services, mailer, build_sms(services.instance), dial=dial_runs)
    commands.run_until_stopped(runner.stop, lambda: runner.run(interval_seconds=interval), seconds)


@worker_app.command("run")
def worker_run(
    ctx: typer.Context,
    trunk_name: str = typer.Option(..., "--trunk", help="The trunk (PBX) this worker dials through."),
    name: str | None = typer.Option(
        None, "--name", help="Worker name, unique across the deployment (default: the trunk name)."
    ),
    interval: float = typer.Option(5, "--interval", help="Seconds between looks for due calls when idle."),
    seconds: float | None = typer.Option(
        None, "--seconds", help="Stop after this long (default: until SIGTERM/SIGINT)."
    ),
):
    """Dial every open run on one trunk, side by side with other workers (PostgreSQL only)."""
    from safecall.workers import DialerWorker

    runner = DialerWorker(state(ctx).services(), trunk_name, name)
    commands.run_until_stopped(runner.stop, lambda: runner.run(interval_seconds=interval), seconds)
