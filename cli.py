"""The `safecall` command: parse arguments, build dependencies, call the library, print."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Optional

import typer
from sqlalchemy.exc import OperationalError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from safecall import people, phones
from safecall.audit import log_access
from safecall.campaign import check_campaign, list_campaigns, load_campaign
from safecall.clock import Clock, SystemClock
from safecall.errors import InputError, NotFoundError, SafeCallError
from safecall.roster import import_roster
from safecall.runs import RunStatus, launch_run, list_runs, run_status
from safecall.services import Services
from safecall.stopping import stop_on_signals
from safecall.settings import Instance, load_instance, locate_instance, scaffold_instance, show_settings
from safecall.store import Disposition
from safecall.store.db import explain
from safecall.visits import OUTCOMES, export_lists, open_task_rows, private_dir, record_outcome


@dataclass
class AppContext:
    make_clock: Callable[[], Clock]
    environ: dict
    config_option: Optional[str] = None
    _services: Optional[Services] = field(default=None, repr=False)

    def instance(self) -> Instance:
        root = locate_instance(self.config_option, self.environ, Path.cwd())
        return load_instance(root, self.environ)

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None

    def services(self, check_schema: bool = True) -> Services:
        if self._services is None:
            self._services = Services.open(self.instance(), self.make_clock(), check_schema=check_schema)
        return self._services


def create_app(make_clock: Callable[[], Clock] = SystemClock, environ: dict | None = None) -> typer.Typer:
    """The Typer app; tests pass their own clock and environment."""
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    app = typer.Typer(help="SafeCall: weekly automated wellness-check calls (안심콜).", no_args_is_help=True,
                      pretty_exceptions_enable=False, add_completion=False)
    recipients = typer.Typer(help="The roster of people who are called.", no_args_is_help=True)
    campaign = typer.Typer(help="Campaign definitions and their weekly runs.", no_args_is_help=True)
    visits = typer.Typer(help="Home-visit and callback lists for the teams.", no_args_is_help=True)
    config = typer.Typer(help="Settings of this instance.", no_args_is_help=True)
    trunk = typer.Typer(help="Telephony trunks (config/trunks.toml).", no_args_is_help=True)
    scheduler = typer.Typer(help="The long-running process that launches, dials and delivers.", no_args_is_help=True)
    signals = typer.Typer(help="Inactivity signals that trigger ad-hoc check calls.", no_args_is_help=True)
    report = typer.Typer(help="Reports for the office.", no_args_is_help=True)
    ivr = typer.Typer(help="IVR flows and their prompt audio.", no_args_is_help=True)
    worker = typer.Typer(help="Scale-out dialer workers sharing a PostgreSQL database (docs/scaling.md).", no_args_is_help=True)
    database = typer.Typer(help="The database: schema revision and upgrades.", no_args_is_help=True)
    for sub, name in ((worker, "worker"), (database, "db"), (recipients, "recipients"), (campaign, "campaign"), (visits, "visits"), (config, "config"), (trunk, "trunk"), (ivr, "ivr"), (scheduler, "scheduler"), (signals, "signals"), (report, "report")):
        app.add_typer(sub, name=name)

    def handled(command):
        """Library errors become a plain message and exit code 1; nothing else is caught."""
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except InputError as exc:
                err.print("[red]error:[/red] ", escape(exc.summary), markup=True, sep="")  # names and titles from files
                for problem in exc.problems:
                    err.print(f"  - {problem}", markup=False)
                raise typer.Exit(1) from None
            except SafeCallError as exc:
                err.print("[red]error:[/red] ", escape(str(exc)), markup=True, sep="")
                raise typer.Exit(1) from None
            except OperationalError as exc:  # a read outside a transaction met a locked or broken database
                err.print("[red]error:[/red] ", escape(explain(exc, "the instance")), markup=True, sep="")
                raise typer.Exit(1) from None
        return wrapper

    def ctx_of(ctx: typer.Context) -> AppContext:
        return ctx.find_root().obj

    @app.callback()
    def main(ctx: typer.Context,
             config_path: Optional[str] = typer.Option(None, "--config", help="Instance folder (or its config/safecall.toml). Default: $SAFECALL_CONFIG, else the current folder.")):
        # Real commands run on the real clock; a drill takes its own --now and plays on a copy of the data.
        env = dict(os.environ if environ is None else environ)
        ctx.obj = AppContext(make_clock=make_clock, environ=env, config_option=config_path)
        ctx.call_on_close(ctx.obj.close)

    # ---- instance -----------------------------------------------------------------------------
    @app.command()
    @handled
    def init(directory: Path = typer.Argument(..., help="Folder for the new instance.")):
        """Create a new instance folder from the shipped defaults."""
        created = scaffold_instance(directory)
        out.print(f"Created instance in {directory.absolute()}:")
        for path in created:
            out.print(f"  {path}")
        out.print(f"Use it with: safecall --config {directory} ...  (or export SAFECALL_CONFIG={directory})")

    @app.command()
    @handled
    def demo(ctx: typer.Context, directory: Optional[Path] = typer.Option(None, "--dir", help="Keep the demo instance here (default: a new temporary folder).")):
        """Run a whole weekly campaign on a synthetic roster and a simulated trunk, in accelerated time."""
        from safecall.demo import run_demo

        target = directory or Path(tempfile.mkdtemp(prefix="safecall-demo-"))
        out.print(f"Demo instance: {target.absolute()}")
        with progress_bar(out) as update:
            result = run_demo(target, ctx_of(ctx).make_clock(), on_progress=update)
        roster = result.roster
        out.print(f"Roster: {roster.added} people imported, {len(roster.without_consent)} without consent (stored, never called).")
        print_status(out, result.status, result.instance_dir)
        out.print("Lists for the teams:")
        for path in result.files:
            out.print(f"  {path}")

    @config.command("show")
    @handled
    def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
        """Print the effective settings; secrets are masked."""
        shown = show_settings(ctx_of(ctx).instance())
        if as_json:
            out.print_json(json.dumps(shown, ensure_ascii=False, default=str))
            return
        for key, value in shown.items():
            out.print(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}", markup=False)

    @app.command()
    @handled
    def doctor(ctx: typer.Context, wait: float = typer.Option(10, "--wait", help="Seconds to wait for each trunk's FastAGI check.")):
        """Check the instance: database integrity and schema, permissions, campaigns and every trunk."""
        from safecall.doctor import run_doctor

        checks = run_doctor(ctx_of(ctx).services(check_schema=False), wait_seconds=wait)
        print_checks(checks)

    def print_checks(checks) -> None:
        for check in checks:
            mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
            out.print(f"{mark} {check.name}: ", end="")
            out.print(check.detail, markup=False)
        if not all(check.ok for check in checks):
            raise typer.Exit(1)

    @database.command("status")
    @handled
    def db_status(ctx: typer.Context):
        """Show the database's schema revision and whether it needs `safecall db upgrade`."""
        db = ctx_of(ctx).services(check_schema=False).db
        state = db.schema_state()
        out.print(f"database: {db.safe_url()}", markup=False)
        out.print(f"schema revision: {state.describe()}; this SafeCall: {state.head}")
        if state.has_tables and state.current != state.head:
            out.print("needs: safecall db upgrade")
            raise typer.Exit(1)

    @database.command("upgrade")
    @handled
    def db_upgrade(ctx: typer.Context):
        """Bring the database to this SafeCall's schema, in place (a SQLite file is backed up first)."""
        db = ctx_of(ctx).services(check_schema=False).db
        upgrade = db.upgrade()
        if not upgrade.applied:
            out.print(f"The database is already at schema revision {upgrade.head}; nothing to do.")
            return
        out.print(f"Upgraded {db.safe_url()}: applied {', '.join(upgrade.applied)}.", markup=False)
        if upgrade.backup:
            out.print(f"The database as it was is kept in {upgrade.backup}", markup=False)

    @trunk.command("check")
    @handled
    def trunk_check(ctx: typer.Context, name: Optional[str] = typer.Argument(None, help="Trunk name (default: the default trunk)."),
                    wait: float = typer.Option(10, "--wait", help="Seconds to wait for Asterisk to reach FastAGI.")):
        """Check that a trunk is reachable and set up: login, dialplan, FastAGI."""
        print_checks(ctx_of(ctx).services().check_trunk(name, wait_seconds=wait))

    @app.command()
    @handled
    def serve(ctx: typer.Context, campaign_name: str = typer.Option("weekly-safe-call", "--campaign", help="Campaign whose trunk and IVR flow to serve."),
              seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this long (default: until interrupted).")):
        """Host the trunk's IVR side (Twilio webhooks or FastAGI) without dialling; `campaign run` hosts it too."""
        services = ctx_of(ctx).services()
        services.trunk(services.campaign(campaign_name).trunk)  # started: its FastAGI or webhook server listens
        out.print(f"Serving the IVR of {campaign_name!r}; Ctrl-C stops.")
        with stop_on_signals() as stop:
            stop.wait(seconds)
        services.close_trunks()
        out.print("Stopped.")

    @scheduler.command("run")
    @handled
    def scheduler_run(ctx: typer.Context, interval: float = typer.Option(30, "--interval", help="Seconds between checks."),
                      dial_runs: bool = typer.Option(True, "--dial/--no-dial", help="--no-dial: leave dialling to `safecall worker run` processes."),
                      seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this long (default: until SIGTERM/SIGINT).")):
        """Launch campaigns at their weekly slot, dial, publish the daily lists, escalate; survives restarts."""
        from safecall.notify import build_mailer, build_sms
        from safecall.scheduler import Scheduler

        services = ctx_of(ctx).services()
        mailer = build_mailer(services.instance)
        runner = Scheduler(services, mailer, build_sms(services.instance), dial=dial_runs)
        run_until_stopped(runner.stop, lambda: runner.run(interval_seconds=interval), seconds)

    @worker.command("run")
    @handled
    def worker_run(ctx: typer.Context, trunk_name: str = typer.Option(..., "--trunk", help="The trunk (PBX) this worker dials through."),
                   name: Optional[str] = typer.Option(None, "--name", help="Worker name, unique across the deployment (default: the trunk name)."),
                   interval: float = typer.Option(5, "--interval", help="Seconds between looks for due calls when idle."),
                   seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this long (default: until SIGTERM/SIGINT).")):
        """Dial every open run on one trunk, side by side with other workers (PostgreSQL only)."""
        from safecall.workers import DialerWorker

        runner = DialerWorker(ctx_of(ctx).services(), trunk_name, name)
        run_until_stopped(runner.stop, lambda: runner.run(interval_seconds=interval), seconds)

    def run_until_stopped(stop, body: Callable[[], None], seconds: Optional[float]) -> None:
        """A long-running command: JSON log lines on stderr; SIGTERM, SIGINT or --seconds set `stop`."""
        import logging
        import threading

        from safecall.events import JsonLineFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonLineFormatter())
        root_logger = logging.getLogger("safecall")
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.INFO)
        timer = threading.Timer(seconds, stop.set) if seconds else None
        if timer:
            timer.start()
        try:
            with stop_on_signals(stop):
                body()
        finally:
            if timer:
                timer.cancel()
            root_logger.removeHandler(handler)

    @signals.command("import")
    @handled
    def signals_import(ctx: typer.Context, file: Path = typer.Argument(..., help="CSV/XLSX: 전화번호 (or person_id), 일자, 종류, 점수.")):
        """Load inactivity signals (power use, telecom, app data); all or nothing."""
        from safecall.signals import import_signals

        services = ctx_of(ctx).services()
        result = import_signals(services.db, file, services.instance.settings, now=services.now())
        out.print(f"Imported {result.rows} signals from {file}: {result.added} added, {result.updated} updated.")

    @signals.command("launch")
    @handled
    def signals_launch(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign whose IVR, trunk and retry rules to use."),
                       on: Optional[str] = typer.Option(None, "--date", help="Day of the signals (default: today)."),
                       dial_now: bool = typer.Option(True, "--dial/--no-dial", help="Start dialling after launching."),
                       fast: bool = typer.Option(False, "--fast", hidden=True)):
        """Launch an ad-hoc check-call run for the people flagged by that day's signals only."""
        from safecall.signals import flagged_people

        refuse_fast(fast)
        services = ctx_of(ctx).services()
        day = parse_day(on, "--date") if on else services.today()
        definition = services.campaign(name)
        people_ids = flagged_people(services.db, services.instance.settings, day)
        if not people_ids:
            out.print(f"No one is flagged by the signals of {day}; nothing to call.")
            return
        run, created = launch_run(services.db, definition, definition.calendar(services.instance), now=services.now(),
                                  label=f"signals-{day}", only_people=people_ids)
        out.print(f"{'Launched' if created else 'Resuming'} run {run.id}: a check call to {len(people_ids)} flagged people ({day}).")
        if dial_now:
            dial(ctx, services, name, run.id)

    @report.command("weekly")
    @handled
    def report_weekly(ctx: typer.Context,
                      start: Optional[str] = typer.Option(None, "--from", help="First campaign week (a date in it), YYYY-MM-DD."),
                      end: Optional[str] = typer.Option(None, "--to", help="Last campaign week, YYYY-MM-DD."),
                      fmt: str = typer.Option("table", "--format", help="table, csv or xlsx."),
                      output: Optional[Path] = typer.Option(None, "--output", help="File for csv/xlsx (default: the outbox)."),
                      chart: Optional[Path] = typer.Option(None, "--chart", help="Also draw the weekly rates to this PNG.")):
        """Per campaign week and dong: called, acknowledged, help requests, non-responders, visits and outcomes."""
        from safecall.policy import week_start
        from safecall.reports import COLUMNS, draw_chart, report_csv, report_xlsx, weekly_report

        services = ctx_of(ctx).services()
        tz = services.instance.tz
        as_week = lambda text, option: week_start(datetime.combine(parse_day(text, option), datetime.min.time(), tzinfo=tz), tz)
        rows = weekly_report(services.db, start=as_week(start, "--from") if start else None, end=as_week(end, "--to") if end else None)
        if fmt == "table":
            table = Table(*[title for _, title in COLUMNS], title="Weekly report")
            for row in rows:
                table.add_row(*[str(c) for c in row.cells()])
            out.print(table)
        elif fmt in ("csv", "xlsx"):
            target = output or services.instance.outbox / f"report-weekly.{fmt}"
            private_dir(target.parent)
            if fmt == "csv":
                target.write_bytes(report_csv(rows))
            else:
                report_xlsx(rows, target)
            out.print(f"wrote {target}")
        else:
            raise InputError(f"unknown format {fmt!r} (use table, csv or xlsx)")
        if chart:
            draw_chart(rows, chart)
            out.print(f"wrote {chart}")

    @ivr.command("prompts")
    @handled
    def ivr_prompts(ctx: typer.Context, flow: str = typer.Option("safe-call", "--flow", help="IVR flow name."),
                    force: bool = typer.Option(False, "--force", help="Replace files that are already there (recorded ones too).")):
        """Build 8 kHz mono prompt audio for Asterisk from the flow's texts (espeak-ng and sox)."""
        from safecall.ivr import load_flow
        from safecall.telephony.asterisk.prompts import build_prompts

        instance = ctx_of(ctx).instance()
        out_dir = instance.ivr_dir / "asterisk" / "sounds" / "safecall"
        written, kept = build_prompts(load_flow(instance.ivr_dir, flow), out_dir, force=force)
        for path in written:
            out.print(f"wrote {path}")
        for path in kept:
            out.print(f"kept  {path} (already there; --force replaces it)")
        out.print(f"Copy {out_dir} to Asterisk's sounds folder (e.g. /var/lib/asterisk/sounds/safecall).")

    # ---- recipients ---------------------------------------------------------------------------
    @recipients.command("import")
    @handled
    def recipients_import(ctx: typer.Context, file: Path = typer.Argument(..., help="CSV (UTF-8 or CP949) or XLSX roster."),
                          dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; change nothing.")):
        """Import or update the roster; all or nothing."""
        services = ctx_of(ctx).services()
        report = import_roster(services.db, file, services.instance.settings, now=services.now(), today=services.today(), dry_run=dry_run)
        verb = "Would import" if dry_run else "Imported"
        out.print(f"{verb} {report.rows} rows from {file}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged.")
        if report.ignored_columns:
            out.print(f"Ignored columns: {', '.join(report.ignored_columns)}")
        if report.without_consent:
            out.print(f"{len(report.without_consent)} without consent (stored, never called):")
            for line in report.without_consent:
                out.print(f"  {line}", markup=False)

    @recipients.command("list")
    @handled
    def recipients_list(ctx: typer.Context, status: Optional[str] = typer.Option(None, help="active, paused or closed."),
                        team: Optional[str] = typer.Option(None, help="Only this team.")):
        """List people on the roster."""
        services = ctx_of(ctx).services()
        rows = people.list_people(services.db, status=status, team=team)
        log_access(services.db, at=services.now(), action="recipients.view", subject=f"roster {team or 'all teams'}",
                   detail=f"status={status or 'any'} people={len(rows)}")
        table = Table("id", "name", "phone", "dong", "team", "risk", "consent", "status")
        for p in rows:
            state = p.status + (f" until {p.paused_until}" if p.paused_until else "") + (f" ({p.closed_reason})" if p.closed_reason else "")
            table.add_row(str(p.id), p.name, phones.national(p.phone), p.dong, p.team, str(p.risk), str(p.consent_date or "none"), state)
        out.print(table)
        out.print(f"{len(rows)} people")

    @recipients.command("show")
    @handled
    def recipients_show(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
        """Show one person and every call made to them."""
        services = ctx_of(ctx).services()
        p, attempts = people.person_history(services.db, person)
        log_access(services.db, at=services.now(), action="person.view", subject=f"person {p.id}")
        tz = services.instance.tz
        for label, value in (("id", p.id), ("name", p.name), ("phone", phones.national(p.phone)), ("phone2", phones.national(p.phone2)),
                             ("address", p.address), ("dong", p.dong), ("team", p.team), ("birth date", p.birth_date),
                             ("guardian", f"{p.guardian_name or ''} {phones.national(p.guardian_phone)}".strip()),
                             ("consent", p.consent_date or "none"), ("risk", p.risk),
                             ("status", p.status + (f" until {p.paused_until}" if p.paused_until else "") + (f" ({p.closed_reason})" if p.closed_reason else ""))):
            out.print(f"{label}: {value}", markup=False)
        table = Table("run", "attempt", "placed", "number", "result")
        for a in attempts:
            table.add_row(str(a.run_id), str(a.number), a.placed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                          phones.national(a.phone), Text(people.attempt_result(a)))  # webhook text is data, not markup
        out.print(table)

    @recipients.command("pause")
    @handled
    def recipients_pause(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name."),
                         until: str = typer.Option(..., "--until", help="Last day of the pause, YYYY-MM-DD.")):
        """Stop calling someone until a date (e.g. a hospital stay)."""
        services = ctx_of(ctx).services()
        p = people.pause(services.db, person, until=parse_day(until, "--until"), today=services.today(), now=services.now())
        out.print(f"Paused {p.name} (id {p.id}) until {p.paused_until}.")

    @recipients.command("resume")
    @handled
    def recipients_resume(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
        """Call someone again."""
        services = ctx_of(ctx).services()
        p = people.resume(services.db, person, now=services.now())
        out.print(f"Resumed {p.name} (id {p.id}).")

    @recipients.command("close")
    @handled
    def recipients_close(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name."),
                         reason: str = typer.Option(..., "--reason", help="hospitalised, moved, deceased, declined or other.")):
        """Take someone off the calls for good."""
        services = ctx_of(ctx).services()
        p = people.close(services.db, person, reason=reason, now=services.now())
        out.print(f"Closed {p.name} (id {p.id}): {reason}.")

    # ---- campaigns ----------------------------------------------------------------------------
    @campaign.command("list")
    @handled
    def campaign_list(ctx: typer.Context):
        """List campaign definitions and their runs."""
        services = ctx_of(ctx).services()
        for name in list_campaigns(services.instance):
            out.print(name)
        table = Table("run", "campaign", "week", "status", "first call")
        for run in list_runs(services.db):
            table.add_row(str(run.id), run.campaign, str(run.week_start), run.status,
                          run.first_call_at.astimezone(services.instance.tz).strftime("%Y-%m-%d %H:%M"))
        out.print(table)

    @campaign.command("plan")
    @handled
    def campaign_plan(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name."),
                      weeks: int = typer.Option(8, "--weeks", min=1, max=104, help="How many weeks ahead."),
                      now: Optional[str] = typer.Option(None, "--now", help="Plan from the week of this time (ISO; default: now).")):
        """When each coming week's first calls are placed, and which weeks move past a holiday."""
        from safecall.policy import plan_weeks, week_start

        instance = ctx_of(ctx).instance()
        definition = load_campaign(instance, name)
        calendar = definition.calendar(instance)
        moment = parse_moment(now, "--now") if now else ctx_of(ctx).make_clock().now()
        table = Table("week", "slot", "first calls", "why moved", title=f"{name}: the next {weeks} weeks")
        for planned in plan_weeks(calendar, definition.schedule.weekday, definition.schedule.start, week_start(moment, calendar.tz), weeks):
            first = planned.first_call.astimezone(calendar.tz).strftime("%Y-%m-%d %a %H:%M") if planned.first_call else "no calling day: fix the window"
            table.add_row(str(planned.week), planned.slot.strftime("%Y-%m-%d %a %H:%M"), first, escape(planned.why_moved or ""))
        out.print(table)

    @campaign.command("validate")
    @handled
    def campaign_validate(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name (campaigns/NAME.toml).")):
        """Check a campaign definition and report every error."""
        _, problems = check_campaign(ctx_of(ctx).instance(), name)
        if problems:
            raise InputError(f"campaign {name!r} has {len(problems)} problem(s)", problems)
        out.print(f"campaign {name!r} is valid")

    def dial(ctx: typer.Context, services: Services, name: str, run_id: int) -> None:
        dialer = services.dialer(services.campaign(name))
        try:
            # SIGTERM or Ctrl-C: no new calls; the calls in flight finish and are written, then the command ends.
            with stop_on_signals() as stop, progress_bar(out) as update:
                dialer.run(run_id, on_progress=update, stop_requested=stop.is_set)
        finally:
            services.close_trunks()
        print_status(out, run_status(services.db, run_id), services.instance.root)

    def drill_and_print(ctx: typer.Context, name: str, start: datetime, directory: Optional[Path], trunk_name: Optional[str]) -> None:
        from safecall.drills import run_drill

        instance = ctx_of(ctx).instance()  # never ctx.services(): that would open (and create) the real database
        when = start.astimezone(instance.tz).strftime("%Y-%m-%d %H:%M")
        announce = lambda folder: out.print(f"Drill of {name} from {when}, in virtual time, on a copy of this instance's data "
                                            f"in {folder}. The real database is not touched.", markup=False)
        with progress_bar(out) as update:
            result = run_drill(instance, name, start=start, folder=directory, trunk_name=trunk_name, on_progress=update, on_ready=announce)
        print_status(out, result.status, result.folder)
        out.print(f"The drill's copy is kept in {result.folder}." if result.kept else "The drill's copy was deleted.", markup=False)

    @app.command("drill")
    @handled
    def drill(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name."),
              now: Optional[str] = typer.Option(None, "--now", help="Play the week from this time (ISO, e.g. 2026-11-23T08:00+09:00; default: now)."),
              directory: Optional[Path] = typer.Option(None, "--dir", help="Keep the drill's copy in this folder (a folder holding one is resumed); default: a temporary folder, deleted afterwards."),
              trunk_name: Optional[str] = typer.Option(None, "--trunk", help="A simulated trunk to dial through (default: the campaign's).")):
        """Rehearse a campaign's week in virtual time on a throwaway copy of this instance's data; real runs are never touched."""
        drill_and_print(ctx, name, parse_moment(now, "--now") if now else ctx_of(ctx).make_clock().now(), directory, trunk_name)

    @campaign.command("launch")
    @handled
    def campaign_launch(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name."),
                        dial_now: bool = typer.Option(True, "--dial/--no-dial", help="Start dialling after launching."),
                        fast: bool = typer.Option(False, "--fast", help="A drill, as 'safecall drill NAME': the week in virtual time on a copy of the data; no real run.")):
        """Create this week's run (or resume it if it exists) and dial it."""
        if fast:
            err.print("--fast runs a drill on a throwaway copy of this instance's data ('safecall drill NAME'); "
                      "no real run is created or used. Leave out --fast to launch the real run.", markup=False)
            drill_and_print(ctx, name, ctx_of(ctx).make_clock().now(), None, None)
            return
        services = ctx_of(ctx).services()
        definition = services.campaign(name)
        run, created = launch_run(services.db, definition, definition.calendar(services.instance), now=services.now())
        first = run.first_call_at.astimezone(services.instance.tz).strftime("%Y-%m-%d %H:%M")
        if created:
            out.print(f"Launched run {run.id} of {name} for the week of {run.week_start}; first calls {first}.")
        else:
            out.print(f"Run {run.id} of {name} for the week of {run.week_start} already exists ({run.status}); resuming it.")
        if dial_now:
            dial(ctx, services, name, run.id)

    def refuse_fast(fast: bool) -> None:
        if fast:
            raise InputError("--fast would play a real run in virtual time and use it up; rehearse on a copy of the data "
                             "with 'safecall drill CAMPAIGN' instead")

    @campaign.command("run")
    @handled
    def campaign_run(ctx: typer.Context, run: Optional[int] = typer.Argument(None, help="Run id (default: every open run)."),
                     fast: bool = typer.Option(False, "--fast", hidden=True)):
        """Dial the due attempts of a run until it closes."""
        refuse_fast(fast)
        services = ctx_of(ctx).services()
        runs = [r for r in list_runs(services.db) if (r.id == run if run is not None else r.status == "open")]
        if not runs:
            raise NotFoundError(f"no run {run}" if run is not None else "no open run; launch one with 'safecall campaign launch NAME'")
        for r in runs:
            out.print(f"Dialling run {r.id} ({r.campaign}, week of {r.week_start})")
            dial(ctx, services, r.campaign, r.id)

    @campaign.command("status")
    @handled
    def campaign_status(ctx: typer.Context, run: Optional[int] = typer.Argument(None, help="Run id (default: the latest run).")):
        """Show the progress of a run."""
        services = ctx_of(ctx).services()
        runs = list_runs(services.db)
        if not runs:
            raise NotFoundError("no runs yet; launch one with 'safecall campaign launch NAME'")
        chosen = runs[-1].id if run is None else run
        print_status(out, run_status(services.db, chosen), services.instance.root)

    # ---- visits -------------------------------------------------------------------------------
    @visits.command("list")
    @handled
    def visits_list(ctx: typer.Context,
                    on: Optional[str] = typer.Option(None, "--date", help="The day of the list, YYYY-MM-DD (default: today)."),
                    team: Optional[str] = typer.Option(None, "--team", help="Only this team."),
                    kind: str = typer.Option("visit", "--kind", help="visit (home visits) or callback (pressed 2)."),
                    fmt: str = typer.Option("table", "--format", help="table, csv or xlsx."),
                    output: Optional[Path] = typer.Option(None, "--output", help="A .csv/.xlsx file, or a folder for one file per team (default: the outbox).")):
        """The open home-visit (or callback) list, one per team, most urgent first."""
        services = ctx_of(ctx).services()
        day = parse_day(on, "--date") if on else services.today()
        lists = open_task_rows(services.db, services.instance.tz, on=day, kind=kind, team=team,
                               teams=[t.name for t in services.instance.settings.teams])
        log_access(services.db, at=services.now(), action="visits.export" if fmt != "table" else "visits.view",
                   subject=f"{kind} list {team or 'all teams'}", detail=f"day={day} format={fmt}")
        if fmt == "table":
            for team_name, rows in lists.items():
                if not rows:  # said in a line: an empty table reads like a list that failed to load
                    out.print(f"{team_name}: no open {kind} tasks for {day}.")
                    continue
                table = Table("#", "task", "name", "phone", "address", "dong", "guardian", "weeks", "no key", "risk", "last ack",
                              title=f"{team_name}: {len(rows)} {kind}(s) for {day}")
                for r in rows:
                    table.add_row(str(r.rank), str(r.task), r.name, r.phone, r.address, r.dong, f"{r.guardian} {r.guardian_phone}".strip(),
                                  str(r.weeks_without_ack), r.answered_without_key, r.risk, r.last_ack)
                out.print(table)
            if not lists:
                out.print(f"No open {kind} tasks for {day}.")
            return
        files = export_lists(lists, output=output or services.instance.outbox / day.isoformat(), fmt=fmt, on=day, kind=kind)
        for path in files:
            out.print(f"wrote {path}")
        if not files:
            out.print(f"No open {kind} tasks for {day}; nothing written.")

    @visits.command("deliver")
    @handled
    def visits_deliver(ctx: typer.Context, on: Optional[str] = typer.Option(None, "--date", help="Day of the lists, YYYY-MM-DD (default: today).")):
        """Write the day's lists again and (re)send them to every team."""
        from safecall.delivery import deliveries_for, publish_day
        from safecall.notify import build_mailer

        services = ctx_of(ctx).services()
        day = parse_day(on, "--date") if on else services.today()
        publish_day(services.db, services.instance, build_mailer(services.instance), day, now=services.now(), resend=True)
        print_deliveries(deliveries_for(services.db, day), day)

    @visits.command("deliveries")
    @handled
    def visits_deliveries(ctx: typer.Context, on: Optional[str] = typer.Option(None, "--date", help="Day, YYYY-MM-DD (default: today).")):
        """Show whether each team's lists for a day were delivered."""
        from safecall.delivery import deliveries_for

        services = ctx_of(ctx).services()
        day = parse_day(on, "--date") if on else services.today()
        print_deliveries(deliveries_for(services.db, day), day)

    def print_deliveries(rows, day) -> None:
        table = Table("team", "list", "status", "attempts", "last error", title=f"Deliveries for {day}")
        for d in rows:
            table.add_row(d.team, d.kind, d.status, str(d.attempts), d.last_error or "")
        out.print(table)
        if any(d.status == "failed" for d in rows):
            err.print("[red]some lists were not delivered; fix the cause and run 'safecall visits deliver'[/red]")

    @visits.command("record")
    @handled
    def visits_record(ctx: typer.Context, task: int = typer.Argument(..., help="Task number from the list."),
                      outcome: str = typer.Option(..., "--outcome", help=", ".join(OUTCOMES)),
                      note: Optional[str] = typer.Option(None, "--note", help="What the team saw."),
                      until: Optional[str] = typer.Option(None, "--until", help="hospitalised: pause calls until this day.")):
        """Record what a visit found; not_home keeps the task open."""
        services = ctx_of(ctx).services()
        recorded = record_outcome(services.db, task, outcome, now=services.now(), tz=services.instance.tz, note=note,
                                  until=parse_day(until, "--until") if until else None)
        state = "still open (not home)" if recorded.status == "open" else "closed"
        out.print(f"Task {task}: {outcome}; {state}.")

    # ---- web app, its accounts and the audit trail (issue 18): thin commands over safecall/web, users.py, audit.py
    accounts = typer.Typer(help="Accounts of the web app (`safecall web`): visit team members, officers, admins.", no_args_is_help=True)
    app.add_typer(accounts, name="users")

    @app.command("web")
    @handled
    def web_serve(ctx: typer.Context, host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: [web] host, 127.0.0.1)."),
                  port: Optional[int] = typer.Option(None, "--port", help="Port (default: [web] port, 8080).")):
        """Serve the web pages for visit teams and officers; put a TLS reverse proxy in front (docs/web.md)."""
        from safecall.web import serve

        serve(ctx_of(ctx).services(), host=host, port=port)

    @accounts.command("add")
    @handled
    def users_add(ctx: typer.Context, username: str = typer.Argument(..., help="Login name."),
                  role: str = typer.Option(..., "--role", help="team (a visit team member), officer or admin."),
                  team: Optional[str] = typer.Option(None, "--team", help="The team of a team member."),
                  password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input (default: make one and print it once).")):
        """Create a web account."""
        from safecall import users

        services = ctx_of(ctx).services()
        password = typer.get_text_stream("stdin").readline().rstrip("\n") if password_stdin else users.new_password()
        users.add_user(services.db, username, password, role=role, team=team, teams=[t.name for t in services.instance.settings.teams],
                       now=services.now())
        out.print(f"Created {username} ({role}{', ' + team if team else ''}).", markup=False)
        if not password_stdin:
            out.print(f"Password (shown once; hand it over in person): {password}", markup=False)

    @accounts.command("list")
    @handled
    def users_list(ctx: typer.Context):
        """List web accounts."""
        from safecall import users

        table = Table("user", "role", "team", "status", "created")
        for user in users.list_users(ctx_of(ctx).services().db):
            table.add_row(escape(user.username), user.role, escape(user.team or ""), "disabled" if user.disabled else "active", str(user.created_at.date()))
        out.print(table)

    @accounts.command("disable")
    @handled
    def users_disable(ctx: typer.Context, username: str = typer.Argument(..., help="Login name.")):
        """Stop an account from logging in; its open sessions end."""
        from safecall import users

        services = ctx_of(ctx).services()
        users.disable_user(services.db, username, now=services.now())
        out.print(f"Disabled {username}; its sessions have ended.", markup=False)

    @accounts.command("reset")
    @handled
    def users_reset(ctx: typer.Context, username: str = typer.Argument(..., help="Login name."),
                    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from standard input (default: make one and print it once).")):
        """Give an account a new password (and enable it again); its open sessions end."""
        from safecall import users

        services = ctx_of(ctx).services()
        password = typer.get_text_stream("stdin").readline().rstrip("\n") if password_stdin else users.new_password()
        users.reset_password(services.db, username, password, now=services.now())
        out.print(f"Reset the password of {username}.", markup=False)
        if not password_stdin:
            out.print(f"Password (shown once; hand it over in person): {password}", markup=False)

    @app.command("audit")
    @handled
    def audit_show(ctx: typer.Context, actor: Optional[str] = typer.Option(None, "--actor", help="e.g. web:kim or os:root(uid 0)."),
                   action: Optional[str] = typer.Option(None, "--action", help="e.g. visit.record, or web.* for every web action."),
                   subject: Optional[str] = typer.Option(None, "--subject", help="e.g. 'task 12' or 'person 3'."),
                   since: Optional[str] = typer.Option(None, "--since", help="Written on or after this day, YYYY-MM-DD (real time)."),
                   until: Optional[str] = typer.Option(None, "--until", help="Written before this day, YYYY-MM-DD (real time)."),
                   limit: int = typer.Option(200, "--limit", min=1, help="At most this many, newest first.")):
        """Show the audit trail: who did what, the time it was for, and the real time it was written."""
        from safecall.audit import audit_events

        services = ctx_of(ctx).services()
        tz = services.instance.tz
        start = lambda text, option: datetime.combine(parse_day(text, option), datetime.min.time(), tzinfo=tz)
        events = audit_events(services.db, actor=actor, action=action, subject=subject, limit=limit,
                              since=start(since, "--since") if since else None, until=start(until, "--until") if until else None)
        table = Table("id", "written (real time)", "for (the clock's time)", "actor", "action", "subject", "detail")
        for e in events:
            written = e.real_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if e.real_at else "(before schema 5)"
            table.add_row(str(e.id), written, e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                          *(escape(text) for text in (e.actor, e.action, e.subject, e.detail)))
        out.print(table)
        out.print(f"{len(events)} records")

    return app


def parse_moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO time", param_hint=option) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-11-23T10:00+09:00", param_hint=option)
    return moment


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option}: {text!r} is not a date (use YYYY-MM-DD)") from None


class progress_bar:
    """A rich progress bar over people finished; a callback the dialer calls."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("calling"), BarColumn(), MofNCompleteColumn(), TextColumn("people done"),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self):
        self.progress.start()
        self.task = self.progress.add_task("calling", total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc):
        self.progress.stop()
        return False


def print_status(console: Console, status: RunStatus, instance_root: Path) -> None:
    run = status.run
    table = Table(title=f"Run {run.id}: {run.campaign}, week of {run.week_start} ({run.status})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("people", status.people),
        ("acknowledged on the first try", status.acknowledged_first_try),
        ("acknowledged after retries", status.acknowledged_after_retries),
        ("help requests (pressed 2)", status.help_requests),
        ("waiting for the first call", status.waiting_first_call),
        ("pending retries", status.pending_retries),
        ("in a call now", status.in_call),
        ("final non-responders (home visit)", status.final_non_responders),
        ("withdrawn (paused or closed)", status.withdrawn),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    attempts = Table("attempt result", "count", title="Attempts by result")
    for disposition in list(Disposition) + ["in progress"]:
        if status.attempts_by_disposition.get(disposition):
            attempts.add_row(disposition, str(status.attempts_by_disposition[disposition]))
    console.print(attempts)


app = create_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
