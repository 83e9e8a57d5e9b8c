"""The `safecall` command: each command parses its arguments, calls one library function and prints.

Commands are module-level functions in Typer groups. `create_app` builds the root that holds them and injects
the clock factory and environment through Click's context object, so tests can pass their own.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
import types
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

import click
import typer
from rich.cells import cell_len
from rich.console import Console
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from safecall import commands, people, phones
from safecall.audit import log_access
from safecall.campaign import check_campaign, list_campaigns, load_campaign
from safecall.clock import Clock, SystemClock
from safecall.commands import parse_day
from safecall.errors import InputError, SafeCallError, translated
from safecall.planning import plan_campaign, plan_lines, spill_warning
from safecall.i18n import CALLBACK_OUTCOME, CLOSE_REASON, LIST_KIND, N_, OUTCOME, PERSON_STATUS, Texts, language
from safecall.roster import import_roster
from safecall.runs import RunStatus, list_runs
from safecall.services import Services
from safecall.settings import Instance, configured_language, load_instance, locate_instance, scaffold_instance, show_settings
from safecall.store import Disposition
from safecall.store.db import explain
from safecall.terminal import add_row, console, csv_text, json_text, markup_safe, plain, print_listing, progress_bar, table
from safecall.visits import export_lists, open_task_rows, record_outcome


@dataclass(frozen=True)
class Injected:
    """What `create_app` was given; the same for every invocation of one app."""
    make_clock: Callable[[], Clock]
    environ: Optional[dict]

    def env(self) -> dict:
        return dict(os.environ if self.environ is None else self.environ)


@dataclass
class AppContext:
    """One invocation's state: options of the root command, language, consoles, and the services once opened."""
    make_clock: Callable[[], Clock]
    environ: dict
    config_option: Optional[str] = None
    out: Console = field(default_factory=console)
    err: Console = field(default_factory=lambda: console(stderr=True))
    _services: Optional[Services] = field(default=None, repr=False)

    @cached_property
    def texts(self) -> Texts:
        # Chosen on first use, when --config is known: the instance's `language` setting counts.
        return Texts(language(self.environ, configured_language(self.root())))

    def _(self, message: str) -> str:
        return self.texts._(message)

    def root(self) -> Path:
        return locate_instance(self.config_option, self.environ, Path.cwd())

    def instance(self) -> Instance:
        return load_instance(self.root(), self.environ)

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None

    def services(self, check_schema: bool = True) -> Services:
        if self._services is None:
            self._services = Services.open(self.instance(), self.make_clock(), check_schema=check_schema)
        return self._services

    def say(self, message: str) -> None:
        """A line for the user; values in it may come from files, so it is never read as markup."""
        self.out.print(plain(message), markup=False)


def state(ctx: typer.Context) -> AppContext:
    return ctx.find_root().obj


def invocation(ctx: click.Context) -> AppContext:
    """The invocation's state, or one built from what create_app was given when the root options failed."""
    obj = ctx.find_root().obj
    if isinstance(obj, AppContext):
        return obj
    injected = obj if isinstance(obj, Injected) else Injected(SystemClock, None)
    return AppContext(make_clock=injected.make_clock, environ=injected.env())


# Click's exits, aborts and usage errors go on to Click, which reports them (newer Typer vendors its own Click).
CLICK_FLOW = (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException,
              next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"))


class SafeCallGroup(TyperGroup):
    """The root command: help in the user's language; errors become a short message and exit code 1, never a traceback."""

    def main(self, args=None, *rest, **kwargs):
        injected = self.context_settings.get("obj")
        environ = injected.env() if isinstance(injected, Injected) else dict(os.environ)
        # Help is translated before Click parses --config, so the option is looked up here.
        root = locate_instance(config_argument(sys.argv[1:] if args is None else list(args)), environ, Path.cwd())
        translate_help(self, Texts(language(environ, configured_language(root))))
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CLICK_FLOW:
            raise
        except InputError as exc:
            fail(ctx, exc.translated(invocation(ctx)._), exc.problems)
        except SafeCallError as exc:
            fail(ctx, exc.translated(invocation(ctx)._))
        except OperationalError as exc:  # a read outside a transaction met a locked or broken database
            fail(ctx, explain(exc, "the instance"))
        except Exception as exc:
            unexpected(ctx, exc)


def config_argument(args: list[str]) -> Optional[str]:
    """The value of a leading `--config X` or `--config=X`, the root option, if given."""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            return None  # a command: later arguments are its own
    return None


def fail(ctx, message: str, problems: list[str] = ()) -> None:
    app = invocation(ctx)
    app.err.print("[red]" + app._("error:") + "[/red] ", markup_safe(message), markup=True, sep="")  # names from files
    for problem in problems:
        app.err.print(f"  - {plain(translated(problem, app._))}", markup=False)
    raise typer.Exit(1)


def unexpected(ctx, exc: Exception) -> None:
    """A defect or an outside failure nobody foresaw: details go to a log file, the user gets one line and a hint."""
    app = invocation(ctx)
    if app.environ.get("SAFECALL_DEBUG"):
        raise exc
    where = commands.log_failure(app.environ, ctx.command_path, "".join(traceback.format_exception(exc)))
    app.err.print("[red]" + app._("error:") + "[/red] ", markup_safe(app._(
        "SafeCall stopped on an unexpected problem ({kind}: {detail}).").format(kind=type(exc).__name__, detail=exc)),
        markup=True, sep="")
    hint = app._("Details are in {log}. Run `safecall doctor`; if the problem stays, "
                 "send that file to whoever maintains SafeCall.")
    app.err.print(plain(hint.format(log=where or app._("(no log file could be written)"))), markup=False)
    raise typer.Exit(1)


def translate_help(command: click.Command, texts: Texts) -> None:
    """Help of every command and option in the user's language (msgids are the English help in the code)."""
    for param in command.params:
        if getattr(param, "help", None):
            param.help = texts._(param.help)
    if command.help:
        command.help = texts._(command.help)
    if command.short_help:
        command.short_help = texts._(command.short_help)
    if getattr(command, "_help_option", False) is None:  # Click 8.2+ builds --help once per command and keeps it
        names = types.SimpleNamespace(help_option_names=command.context_settings.get("help_option_names", ["--help"]))
        option = command.get_help_option(names)
        if option is not None:
            option.help = texts._(HELP_OPTION)
    for sub in getattr(command, "commands", {}).values():
        translate_help(sub, texts)


HELP_OPTION = N_("Show this message and exit.")


def emit(app: AppContext, fmt: str, headers: list[str], rows: list[list], records: list[dict], title: str | None = None,
         whole: tuple[int, ...] = ()) -> None:
    """One listing as a table (people read it), CSV (Excel or a pipe) or JSON (programs: English keys, stored values)."""
    if fmt == "json":
        typer.echo(json_text(records), nl=False)
    elif fmt == "csv":
        typer.echo(csv_text(headers, rows), nl=False)
    else:
        print_listing(app.out, headers, rows, title=title, whole=whole)


def check_format(fmt: str, allowed: tuple[str, ...] = ("table", "csv", "json")) -> None:
    if fmt not in allowed:
        raise InputError(N_("--format: unknown format {fmt!r} (use {choices})"), fmt=fmt, choices=", ".join(allowed))


FORMAT_HELP = "table, csv or json."


def group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True)


recipients_app = group("The roster of people who are called.")
campaign_app = group("Campaign definitions and their weekly runs.")
visits_app = group("Home-visit and callback lists for the teams.")
config_app = group("Settings of this instance.")
trunk_app = group("Telephony trunks (config/trunks.toml).")
scheduler_app = group("The long-running process that launches, dials and delivers.")
signals_app = group("Inactivity signals that trigger ad-hoc check calls.")
report_app = group("Reports for the office.")
ivr_app = group("IVR flows and their prompt audio.")
worker_app = group("Scale-out dialer workers sharing a PostgreSQL database (docs/scaling.md).")
db_app = group("The database: schema revision and upgrades.")

GROUPS = {"worker": worker_app, "db": db_app, "recipients": recipients_app, "campaign": campaign_app, "visits": visits_app,
          "config": config_app, "trunk": trunk_app, "ivr": ivr_app, "scheduler": scheduler_app, "signals": signals_app,
          "report": report_app}


def root_options(
        ctx: typer.Context,
        config_path: Optional[str] = typer.Option(None, "--config", help="Instance folder (or its config/safecall.toml). Default: $SAFECALL_CONFIG, else the current folder.")):
    # Real commands run on the real clock; a drill takes its own --now and plays on a copy of the data.
    injected: Injected = ctx.obj
    ctx.obj = AppContext(make_clock=injected.make_clock, environ=injected.env(), config_option=config_path)
    ctx.call_on_close(ctx.obj.close)


# ---- instance -----------------------------------------------------------------------------------------------------
def init(ctx: typer.Context, directory: Path = typer.Argument(..., help="Folder for the new instance.")):
    """Create a new instance folder from the shipped defaults."""
    app = state(ctx)
    created = scaffold_instance(directory)
    app.say(app._("Created instance in {folder}:").format(folder=directory.absolute()))
    for path in created:
        app.say(f"  {path}")
    app.say(app._("Use it with: safecall --config {folder} ...  (or export SAFECALL_CONFIG={folder})").format(folder=directory))


def demo(ctx: typer.Context, directory: Optional[Path] = typer.Option(None, "--dir", help="Keep the demo instance here (default: a new temporary folder).")):
    """Run a whole weekly campaign on a synthetic roster and a simulated trunk, in accelerated time."""
    from safecall.demo import run_demo

    app = state(ctx)
    target = directory or Path(tempfile.mkdtemp(prefix="safecall-demo-"))
    app.say(app._("Demo instance: {folder}").format(folder=target.absolute()))
    with progress(app) as update:
        result = run_demo(target, app.make_clock(), on_progress=update)
    roster = result.roster
    app.say(app._("Roster: {added} people imported, {without} without consent (stored, never called).").format(
        added=roster.added, without=len(roster.without_consent)))
    print_status(app, result.status)
    app.say(app._("Lists for the teams:"))
    for path in result.files:
        app.say(f"  {path}")


def doctor(ctx: typer.Context, wait: float = typer.Option(10, "--wait", help="Seconds to wait for each trunk's FastAGI check.")):
    """Check the instance: database integrity and schema, permissions, campaigns and every trunk."""
    from safecall.doctor import run_doctor

    app = state(ctx)
    print_checks(app, run_doctor(app.services(check_schema=False), wait_seconds=wait))


def serve(ctx: typer.Context, campaign_name: str = typer.Option("weekly-safe-call", "--campaign", help="Campaign whose trunk and IVR flow to serve."),
          seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this long (default: until interrupted).")):
    """Host the trunk's IVR side (Twilio webhooks or FastAGI) without dialling; `campaign run` hosts it too."""
    app = state(ctx)
    commands.serve_ivr(app.services(), campaign_name, seconds,
                       on_started=lambda: app.say(app._("Serving the IVR of {campaign!r}; Ctrl-C stops.").format(campaign=campaign_name)))
    app.say(app._("Stopped."))


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Print the effective settings; secrets are masked."""
    app = state(ctx)
    shown = show_settings(app.instance())
    if as_json:
        typer.echo(json_text(shown), nl=False)
        return
    for key, value in shown.items():
        app.say(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")


def print_checks(app: AppContext, checks) -> None:
    passed, failed = app._("ok"), app._("FAIL")
    width = max(cell_len(passed), cell_len(failed))  # the marks line up in either language
    for check in checks:
        mark = (f"[green]{passed}[/green]" + " " * (width - cell_len(passed)) if check.ok
                else f"[red]{failed}[/red]" + " " * (width - cell_len(failed)))
        app.out.print(f"{mark} {markup_safe(translated(check.name, app._))}: ", end="")
        app.say(translated(check.detail, app._))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@db_app.command("status")
def db_status(ctx: typer.Context):
    """Show the database's schema revision and whether it needs `safecall db upgrade`."""
    app = state(ctx)
    db = app.services(check_schema=False).db
    schema = db.schema_state()
    app.say(app._("database: {url}").format(url=db.safe_url()))
    app.say(app._("schema revision: {current}; this SafeCall: {head}").format(current=schema.describe(), head=schema.head))
    if schema.has_tables and schema.current != schema.head:
        app.say(app._("needs: safecall db upgrade"))
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context):
    """Bring the database to this SafeCall's schema, in place (a SQLite file is backed up first)."""
    app = state(ctx)
    db = app.services(check_schema=False).db
    upgrade = db.upgrade()
    if not upgrade.applied:
        app.say(app._("The database is already at schema revision {head}; nothing to do.").format(head=upgrade.head))
        return
    app.say(app._("Upgraded {url}: applied {revisions}.").format(url=db.safe_url(), revisions=", ".join(upgrade.applied)))
    if upgrade.backup:
        app.say(app._("The database as it was is kept in {path}").format(path=upgrade.backup))


@trunk_app.command("check")
def trunk_check(ctx: typer.Context, name: Optional[str] = typer.Argument(None, help="Trunk name (default: the default trunk)."),
                wait: float = typer.Option(10, "--wait", help="Seconds to wait for Asterisk to reach FastAGI.")):
    """Check that a trunk is reachable and set up: login, dialplan, FastAGI."""
    app = state(ctx)
    print_checks(app, app.services().check_trunk(name, wait_seconds=wait))


# ---- long-running processes -----------------------------------------------------------------------------------------
@scheduler_app.command("run")
def scheduler_run(ctx: typer.Context, interval: float = typer.Option(30, "--interval", help="Seconds between checks."),
                  dial_runs: bool = typer.Option(True, "--dial/--no-dial", help="--no-dial: leave dialling to `safecall worker run` processes."),
                  seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this long (default: until SIGTERM/SIGINT).")):
    """Launch campaigns at their weekly slot, dial, publish the daily lists, escalate; survives restarts."""
    from safecall.notify import build_mailer, build_sms
    from safecall.scheduler import Scheduler

    services = state(ctx).services()
    mailer = build_mailer(services.instance)
    runner = Scheduler(services, mailer, build_sms(services.instance), dial=dial_runs)
    commands.run_until_stopped(runner.stop, lambda: runner.run(interval_seconds=interval), seconds)


@worker_app.command("run")
def worker_run(ctx: typer.Context, trunk_name: str = typer.Option(..., "--trunk", help="The trunk (PBX) this worker dials through."),
               name: Optional[str] = typer.Option(None, "--name", help="Worker name, unique across the deployment (default: the trunk name)."),
               interval: float = typer.Option(5, "--interval", help="Seconds between looks for due calls when idle."),
               seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this long (default: until SIGTERM/SIGINT).")):
    """Dial every open run on one trunk, side by side with other workers (PostgreSQL only)."""
    from safecall.workers import DialerWorker

    runner = DialerWorker(state(ctx).services(), trunk_name, name)
    commands.run_until_stopped(runner.stop, lambda: runner.run(interval_seconds=interval), seconds)


# ---- signals, reports, IVR ------------------------------------------------------------------------------------------
@signals_app.command("import")
def signals_import(ctx: typer.Context, file: Path = typer.Argument(..., help="CSV/XLSX: 전화번호 (or person_id), 일자, 종류, 점수.")):
    """Load inactivity signals (power use, telecom, app data); all or nothing."""
    from safecall.signals import import_signals

    app = state(ctx)
    services = app.services()
    result = import_signals(services.db, file, services.instance.settings, now=services.now())
    app.say(app._("Imported {rows} signals from {file}: {added} added, {updated} updated.").format(
        rows=result.rows, file=file, added=result.added, updated=result.updated))


@signals_app.command("launch")
def signals_launch(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign whose IVR, trunk and retry rules to use."),
                   on: Optional[str] = typer.Option(None, "--date", help="Day of the signals (default: today)."),
                   dial_now: bool = typer.Option(True, "--dial/--no-dial", help="Start dialling after launching."),
                   fast: bool = typer.Option(False, "--fast", hidden=True)):
    """Launch an ad-hoc check-call run for the people flagged by that day's signals only."""
    commands.refuse_fast(fast)
    app = state(ctx)
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    check = commands.launch_signal_check(services, name, day)
    if check is None:
        app.say(app._("No one is flagged by the signals of {day}; nothing to call.").format(day=day))
        return
    message = (app._("Launched run {run}: a check call to {people} flagged people ({day}).") if check.created
               else app._("Resuming run {run}: a check call to {people} flagged people ({day})."))
    app.say(message.format(run=check.run.id, people=check.people, day=day))
    if dial_now:
        dial(app, name, check.run.id)


@report_app.command("weekly")
def report_weekly(ctx: typer.Context,
                  start: Optional[str] = typer.Option(None, "--from", help="First campaign week (a date in it), YYYY-MM-DD."),
                  end: Optional[str] = typer.Option(None, "--to", help="Last campaign week, YYYY-MM-DD."),
                  fmt: str = typer.Option("table", "--format", help="table, csv, xlsx or json."),
                  output: Optional[Path] = typer.Option(None, "--output", help="File for csv/xlsx (default: the outbox)."),
                  chart: Optional[Path] = typer.Option(None, "--chart", help="Also draw the weekly rates to this PNG.")):
    """Per campaign week and dong: called, acknowledged, help requests, non-responders, visits and outcomes."""
    from safecall.reports import COLUMNS, weekly_report

    app = state(ctx)
    check_format(fmt, ("table", "csv", "xlsx", "json"))
    if chart:
        commands.writable_file(chart, "--chart")
    services = app.services()
    first, last = commands.report_weeks(services, start, end)
    rows = weekly_report(services.db, start=first, end=last)
    if fmt in ("table", "json"):
        emit(app, fmt, [title for _, title in COLUMNS], [row.cells() for row in rows],
             [row.record() for row in rows], title=app._("Weekly report"))
    else:
        app.say(app._("wrote {path}").format(path=commands.write_report(services, rows, fmt, output)))
    if chart:
        note = commands.draw_report_chart(rows, chart)
        app.say(app._("wrote {path}").format(path=chart))
        if note:
            app.err.print(plain(app._(note)), markup=False)


@ivr_app.command("prompts")
def ivr_prompts(ctx: typer.Context, flow: str = typer.Option("safe-call", "--flow", help="IVR flow name."),
                from_dir: Optional[Path] = typer.Option(None, "--from", help="Folder of the office's recordings (WAV or MP3), named after the prompts: greeting.wav, greeting.slow.wav, greeting.loud.wav."),
                force: bool = typer.Option(False, "--force", help="Replace files that are already there (recorded ones too).")):
    """Prompt audio for Asterisk: the office's recordings converted with sox, espeak-ng for the prompts nobody recorded."""
    from safecall.ivr import load_flow
    from safecall.telephony.asterisk.prompts import prepare_prompts, sounds_dir

    app = state(ctx)
    instance = app.instance()
    out_dir = sounds_dir(instance.ivr_dir)
    done = prepare_prompts(load_flow(instance.ivr_dir, flow), out_dir, from_dir=from_dir, force=force)
    for recording in done.recorded:
        line = app._("recorded {path} from {source} ({seconds:.1f} s; wideband, .sln16 too)") if recording.wideband \
            else app._("recorded {path} from {source} ({seconds:.1f} s)")
        app.say(line.format(path=out_dir / f"{recording.target}.wav", source=recording.source.name, seconds=recording.seconds))
    for path in done.written:
        app.say((app._("wrote {path} (espeak-ng: no recording given)") if from_dir else app._("wrote {path}")).format(path=path))
    for path in done.kept:
        app.say(app._("kept  {path} (already there; --force replaces it)").format(path=path))
    app.say(app._("Copy {folder} to Asterisk's sounds folder (e.g. /var/lib/asterisk/sounds/safecall).").format(folder=out_dir))


# ---- recipients ---------------------------------------------------------------------------------------------------
@recipients_app.command("import")
def recipients_import(ctx: typer.Context, file: Path = typer.Argument(..., help="CSV (UTF-8 or CP949) or XLSX roster."),
                      dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; change nothing.")):
    """Import or update the roster; all or nothing."""
    app = state(ctx)
    services = app.services()
    report = import_roster(services.db, file, services.instance.settings, now=services.now(), today=services.today(), dry_run=dry_run)
    message = (app._("Would import {rows} rows from {file}: {added} added, {updated} updated, {unchanged} unchanged.") if dry_run
               else app._("Imported {rows} rows from {file}: {added} added, {updated} updated, {unchanged} unchanged."))
    app.say(message.format(rows=report.rows, file=file, added=report.added, updated=report.updated, unchanged=report.unchanged))
    if report.ignored_columns:
        app.say(app._("Ignored columns: {columns}").format(columns=", ".join(report.ignored_columns)))
    if report.without_consent:
        app.say(app._("{count} without consent (stored, never called):").format(count=len(report.without_consent)))
        for line in report.without_consent:
            app.say(f"  {line}")


def person_state(app: AppContext, p) -> str:
    words = app.texts.word("status", p.status)
    if p.paused_until:
        words += app._(" until {day}").format(day=p.paused_until)
    if p.closed_reason:
        words += f" ({app.texts.word('reason', p.closed_reason)})"
    return words


@recipients_app.command("list")
def recipients_list(ctx: typer.Context, status: Optional[str] = typer.Option(None, help="active, paused or closed (활성, 일시중지, 종료)."),
                    team: Optional[str] = typer.Option(None, help="Only this team."),
                    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """List people on the roster."""
    app = state(ctx)
    check_format(fmt)
    wanted = app.texts.keyword(status, "status", PERSON_STATUS, "--status") if status else None
    services = app.services()
    rows = people.list_people(services.db, status=wanted, team=team)
    log_access(services.db, at=services.now(), action="recipients.view", subject=f"roster {team or 'all teams'}",
               detail=f"status={wanted or 'any'} people={len(rows)}")
    _ = app._
    emit(app, fmt, [_("id"), _("name"), _("phone"), _("dong"), _("team"), _("risk"), _("consent"), _("status")],
         [[p.id, p.name, phones.national(p.phone), p.dong, p.team, app.texts.risk(p.risk), p.consent_date or _("none"),
           person_state(app, p)] for p in rows],
         [{"id": p.id, "name": p.name, "phone": phones.national(p.phone), "phone2": phones.national(p.phone2), "dong": p.dong,
           "team": p.team, "risk": p.risk, "consent_date": p.consent_date, "status": p.status, "paused_until": p.paused_until,
           "closed_reason": p.closed_reason} for p in rows], whole=(0, 2, 6))
    if fmt == "table":
        app.say(app._("{count} people").format(count=len(rows)))


@recipients_app.command("show")
def recipients_show(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
    """Show one person and every call made to them."""
    app = state(ctx)
    _ = app._
    services = app.services()
    p, attempts = people.person_history(services.db, person)
    log_access(services.db, at=services.now(), action="person.view", subject=f"person {p.id}")
    tz = services.instance.tz
    for label, value in ((_("id"), p.id), (_("name"), p.name), (_("phone"), phones.national(p.phone)),
                         (_("phone2"), phones.national(p.phone2)), (_("address"), p.address), (_("dong"), p.dong),
                         (_("team"), p.team), (_("birth date"), p.birth_date),
                         (_("guardian"), f"{p.guardian_name or ''} {phones.national(p.guardian_phone)}".strip()),
                         (_("consent"), p.consent_date or _("none")), (_("risk"), app.texts.risk(p.risk)),
                         (_("status"), person_state(app, p))):
        app.say(f"{label}: {value}")
    grid = table(_("run"), _("attempt"), _("placed"), _("number"), _("result"), whole=(2, 3))
    for a in attempts:
        add_row(grid, [a.run_id, a.number, a.placed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), phones.national(a.phone),
                       people.attempt_result(a, app.texts)])  # a spoken answer is data: add_row renders it as plain text
    app.out.print(grid)


@recipients_app.command("pause")
def recipients_pause(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name."),
                     until: str = typer.Option(..., "--until", help="Last day of the pause, YYYY-MM-DD.")):
    """Stop calling someone until a date (e.g. a hospital stay)."""
    app = state(ctx)
    services = app.services()
    p = people.pause(services.db, person, until=parse_day(until, "--until"), today=services.today(), now=services.now())
    app.say(app._("Paused {name} (id {id}) until {day}.").format(name=p.name, id=p.id, day=p.paused_until))


@recipients_app.command("resume")
def recipients_resume(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
    """Call someone again."""
    app = state(ctx)
    services = app.services()
    p = people.resume(services.db, person, now=services.now())
    app.say(app._("Resumed {name} (id {id}).").format(name=p.name, id=p.id))


@recipients_app.command("close")
def recipients_close(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name."),
                     reason: str = typer.Option(..., "--reason", help="hospitalised, moved, deceased, declined or other (입원, 이사, 사망, 거부, 기타).")):
    """Take someone off the calls for good."""
    app = state(ctx)
    chosen = app.texts.keyword(reason, "reason", CLOSE_REASON, "--reason")
    services = app.services()
    p = people.close(services.db, person, reason=chosen, now=services.now())
    app.say(app._("Closed {name} (id {id}): {reason}.").format(name=p.name, id=p.id, reason=app.texts.word("reason", chosen)))


# ---- campaigns ----------------------------------------------------------------------------------------------------
@campaign_app.command("list")
def campaign_list(ctx: typer.Context, fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """List campaign definitions and their runs."""
    app = state(ctx)
    check_format(fmt)
    _ = app._
    services = app.services()
    names = list_campaigns(services.instance)
    runs = list_runs(services.db)
    tz = services.instance.tz
    if fmt == "json":
        typer.echo(json_text({"campaigns": names, "runs": [
            {"id": r.id, "campaign": r.campaign, "week_start": r.week_start, "status": r.status,
             "first_call_at": r.first_call_at.astimezone(tz).isoformat()} for r in runs]}), nl=False)
        return
    if fmt == "table":
        for name in names:
            app.say(name)
    emit(app, fmt, [_("run"), _("campaign"), _("week"), _("status"), _("first call")],
         [[r.id, r.campaign, r.week_start, app.texts.word("run", r.status), r.first_call_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")]
          for r in runs], [], whole=(0, 2, 4))


@campaign_app.command("plan")
def campaign_plan(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name."),
                  weeks: int = typer.Option(8, "--weeks", min=1, max=104, help="How many weeks ahead."),
                  now: Optional[str] = typer.Option(None, "--now", help="Plan from the week of this time (ISO; default: now)."),
                  channels: Optional[float] = typer.Option(None, "--channels", help="Channels to estimate the week with (default: the campaign's share of its trunk)."),
                  by: Optional[str] = typer.Option(None, "--by", help="Day the visit list must be complete, YYYY-MM-DD (default: the week's last calling day).")):
    """When the coming weeks' first calls are placed, which move past a holiday, and when the next visit list is complete."""
    from safecall.policy import plan_weeks, week_start

    app = state(ctx)
    _ = app._
    instance = app.instance()
    definition = load_campaign(instance, name)
    calendar = definition.calendar(instance)
    moment = commands.parse_moment(now, "--now") if now else app.make_clock().now()
    grid = table(_("week"), _("slot"), _("first calls"), _("why moved"), whole=(0, 1, 2),
                 title=_("{campaign}: the next {weeks} weeks").format(campaign=name, weeks=weeks))
    for planned in plan_weeks(calendar, definition.schedule.weekday, definition.schedule.start, week_start(moment, calendar.tz), weeks,
                              now=moment):
        first = (app.texts.day_and_time(planned.first_call.astimezone(calendar.tz)) if planned.first_call
                 else _("no calling day: fix the window"))
        add_row(grid, [planned.week, app.texts.day_and_time(planned.slot), first, _(planned.why_moved) if planned.why_moved else ""])
    app.out.print(grid)
    if not commands.has_database(instance):  # the calendar needs no data, and planning never creates a database
        app.say(_("No database yet: import the roster for the estimate of the week's calls."))
        return
    services = app.services()
    plan = plan_campaign(services.db, definition, calendar, now=moment, by_day=parse_day(by, "--by") if by else None,
                         channels=channels or services.campaign_channels(definition))
    when = local_time(app, calendar)
    for line in plan_lines(definition, plan, when, _):
        app.say(line)
    warning = spill_warning(definition, plan, when, _)
    if warning:
        app.err.print(plain(_("warning: ") + warning), markup=False)


def local_time(app: AppContext, calendar):
    return lambda moment: "-" if moment is None else app.texts.day_and_time(moment.astimezone(calendar.tz))


@campaign_app.command("validate")
def campaign_validate(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name (campaigns/NAME.toml).")):
    """Check a campaign definition and report every error."""
    app = state(ctx)
    instance = app.instance()
    definition, problems = check_campaign(instance, name)
    if problems:
        raise InputError(app._("campaign {name!r} has {count} problem(s)").format(name=name, count=len(problems)), problems)
    app.say(app._("campaign {name!r} is valid").format(name=name))
    if not commands.has_database(instance):  # no roster yet: nothing to estimate, and validating creates no database
        return
    services = app.services()
    calendar = definition.calendar(instance)
    plan = plan_campaign(services.db, definition, calendar, now=services.now(), channels=services.campaign_channels(definition))
    warning = spill_warning(definition, plan, local_time(app, calendar), app._)
    if warning:
        app.err.print(plain(app._("warning: ") + warning), markup=False)


def progress(app: AppContext) -> progress_bar:
    return progress_bar(app.out, app._("calling"), app._("people done"))


def dial(app: AppContext, name: str, run_id: int) -> None:
    services = app.services()
    with progress(app) as update:
        status = commands.dial_run(services, name, run_id, on_progress=update)
    print_status(app, status)


def drill_and_print(app: AppContext, name: str, start: datetime, directory: Optional[Path], trunk_name: Optional[str]) -> None:
    from safecall.drills import run_drill

    instance = app.instance()  # never app.services(): that would open (and create) the real database
    when = start.astimezone(instance.tz).strftime("%Y-%m-%d %H:%M")
    announce = lambda folder: app.say(app._("Drill of {campaign} from {when}, in virtual time, on a copy of this instance's data "
                                            "in {folder}. The real database is not touched.").format(campaign=name, when=when, folder=folder))
    with progress(app) as update:
        result = run_drill(instance, name, start=start, folder=directory, trunk_name=trunk_name, on_progress=update, on_ready=announce)
    print_status(app, result.status)
    app.say(app._("The drill's copy is kept in {folder}.").format(folder=result.folder) if result.kept
            else app._("The drill's copy was deleted."))


def drill(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name."),
          now: Optional[str] = typer.Option(None, "--now", help="Play the week from this time (ISO, e.g. 2026-11-23T08:00+09:00; default: now)."),
          directory: Optional[Path] = typer.Option(None, "--dir", help="Keep the drill's copy in this folder (a folder holding one is resumed); default: a temporary folder, deleted afterwards."),
          trunk_name: Optional[str] = typer.Option(None, "--trunk", help="A simulated trunk to dial through (default: the campaign's).")):
    """Rehearse a campaign's week in virtual time on a throwaway copy of this instance's data; real runs are never touched."""
    app = state(ctx)
    drill_and_print(app, name, commands.parse_moment(now, "--now") if now else app.make_clock().now(), directory, trunk_name)


@campaign_app.command("launch")
def campaign_launch(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name."),
                    dial_now: bool = typer.Option(True, "--dial/--no-dial", help="Start dialling after launching."),
                    fast: bool = typer.Option(False, "--fast", help="A drill, as 'safecall drill NAME': the week in virtual time on a copy of the data; no real run.")):
    """Create this week's run (or resume it if it exists) and dial it."""
    app = state(ctx)
    if fast:
        app.err.print(plain(app._("--fast runs a drill on a throwaway copy of this instance's data ('safecall drill NAME'); "
                                  "no real run is created or used. Leave out --fast to launch the real run.")), markup=False)
        drill_and_print(app, name, app.make_clock().now(), None, None)
        return
    services = app.services()
    run, created = commands.launch_week(services, name)
    first = run.first_call_at.astimezone(services.instance.tz).strftime("%Y-%m-%d %H:%M")
    if created:
        app.say(app._("Launched run {run} of {campaign} for the week of {week}; first calls {first}.").format(
            run=run.id, campaign=name, week=run.week_start, first=first))
    else:
        app.say(app._("Run {run} of {campaign} for the week of {week} already exists ({status}); resuming it.").format(
            run=run.id, campaign=name, week=run.week_start, status=app.texts.word("run", run.status)))
    if dial_now:
        dial(app, name, run.id)


@campaign_app.command("run")
def campaign_run(ctx: typer.Context, run: Optional[int] = typer.Argument(None, help="Run id (default: every open run)."),
                 fast: bool = typer.Option(False, "--fast", hidden=True)):
    """Dial the due attempts of a run until it closes."""
    commands.refuse_fast(fast)
    app = state(ctx)
    for r in commands.runs_to_dial(app.services(), run):
        app.say(app._("Dialling run {run} ({campaign}, week of {week})").format(run=r.id, campaign=r.campaign, week=r.week_start))
        dial(app, r.campaign, r.id)


@campaign_app.command("status")
def campaign_status(ctx: typer.Context, run: Optional[int] = typer.Argument(None, help="Run id (default: the latest run)."),
                    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """Show the progress of a run."""
    app = state(ctx)
    check_format(fmt)
    print_status(app, commands.run_to_show(app.services(), run), fmt)


def print_status(app: AppContext, status: RunStatus, fmt: str = "table") -> None:
    _ = app._
    run = status.run
    counts = [
        ("people", _("people"), status.people),
        ("acknowledged_first_try", _("acknowledged on the first try"), status.acknowledged_first_try),
        ("acknowledged_after_retries", _("acknowledged after retries"), status.acknowledged_after_retries),
        ("help_requests", _("help requests (pressed 2)"), status.help_requests),
        ("waiting_first_call", _("waiting for the first call"), status.waiting_first_call),
        ("pending_retries", _("pending retries"), status.pending_retries),
        ("in_call", _("in a call now"), status.in_call),
        ("final_non_responders", _("final non-responders (home visit)"), status.final_non_responders),
        ("withdrawn", _("withdrawn (paused or closed)"), status.withdrawn),
    ]
    results = [(d, status.attempts_by_disposition[d]) for d in list(Disposition) + ["in progress"]
               if status.attempts_by_disposition.get(d)]
    if fmt == "json":
        typer.echo(json_text({"run": run.id, "campaign": run.campaign, "week_start": run.week_start, "status": run.status,
                              **{key: value for key, _label, value in counts},
                              "attempts_by_result": dict(results)}), nl=False)
        return
    if fmt == "csv":
        typer.echo(csv_text([_("what"), _("count")], [[label, value] for _key, label, value in counts] +
                            [[app.texts.word("disposition", d), n] for d, n in results]), nl=False)
        return
    title = _("Run {run}: {campaign}, week of {week} ({status})").format(
        run=run.id, campaign=run.campaign, week=run.week_start, status=app.texts.word("run", run.status))
    grid = table(_("what"), _("count"), title=title, show_header=False)
    grid.columns[1].justify = "right"
    for _key, label, value in counts:
        add_row(grid, [label, value])
    app.out.print(grid)
    attempts = table(_("attempt result"), _("count"), title=_("Attempts by result"))
    attempts.columns[1].justify = "right"
    for disposition, count in results:
        add_row(attempts, [app.texts.word("disposition", disposition), count])
    app.out.print(attempts)


# ---- visits -------------------------------------------------------------------------------------------------------
@visits_app.command("list")
def visits_list(ctx: typer.Context,
                on: Optional[str] = typer.Option(None, "--date", help="The day of the list, YYYY-MM-DD (default: today)."),
                team: Optional[str] = typer.Option(None, "--team", help="Only this team."),
                kind: str = typer.Option("visit", "--kind", help="visit (home visits) or callback (pressed 2); 방문 or 회신."),
                fmt: str = typer.Option("table", "--format", help="table, json, or a file: csv or xlsx."),
                output: Optional[Path] = typer.Option(None, "--output", help="A .csv/.xlsx file, or a folder for one file per team (default: the outbox).")):
    """The open home-visit (or callback) list, one per team, most urgent first."""
    from safecall.visits import COLUMNS

    app = state(ctx)
    _ = app._
    check_format(fmt, ("table", "json", "csv", "xlsx"))
    kind = app.texts.keyword(kind, "kind", LIST_KIND, "--kind")
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    lists = open_task_rows(services.db, services.instance.tz, on=day, kind=kind, team=team,
                           teams=[t.name for t in services.instance.settings.teams])
    log_access(services.db, at=services.now(), action="visits.export" if fmt != "table" else "visits.view",
               subject=f"{kind} list {team or 'all teams'}", detail=f"day={day} format={fmt}")
    kind_word = app.texts.word("kind", kind)
    if fmt == "json":
        typer.echo(json_text({team_name: [dict(zip([key for key, _title in COLUMNS], r.cells())) for r in rows]
                              for team_name, rows in lists.items()}), nl=False)
        return
    if fmt == "table":
        for team_name, rows in lists.items():
            if not rows:  # said in a line: an empty table reads like a list that failed to load
                app.say(_("{team}: no open {kind} tasks for {day}.").format(team=team_name, kind=kind_word, day=day))
                continue
            emit(app, fmt, [_("#"), _("task"), _("name"), _("phone"), _("address"), _("dong"), _("guardian"), _("weeks"),
                            _("no key"), _("risk"), _("last ack")],
                 [[r.rank, r.task, r.name, r.phone, r.address, r.dong, f"{r.guardian} {r.guardian_phone}".strip(),
                   r.weeks_without_ack, r.answered_without_key, r.risk, r.last_ack] for r in rows], [],
                 title=_("{team}: {count} {kind}(s) for {day}").format(team=team_name, count=len(rows), kind=kind_word, day=day),
                 whole=(0, 1, 3, 10))
        if not lists:
            app.say(_("No open {kind} tasks for {day}.").format(kind=kind_word, day=day))
        return
    files = export_lists(lists, output=output or services.instance.outbox / day.isoformat(), fmt=fmt, on=day, kind=kind)
    for path in files:
        app.say(_("wrote {path}").format(path=path))
    if not files:
        app.say(_("No open {kind} tasks for {day}; nothing written.").format(kind=kind_word, day=day))


@visits_app.command("deliver")
def visits_deliver(ctx: typer.Context, on: Optional[str] = typer.Option(None, "--date", help="Day of the lists, YYYY-MM-DD (default: today).")):
    """Write the day's lists again and (re)send them to every team."""
    from safecall.delivery import deliveries_for, publish_day
    from safecall.notify import build_mailer

    app = state(ctx)
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    publish_day(services.db, services.instance, build_mailer(services.instance), day, now=services.now(), resend=True)
    print_deliveries(app, deliveries_for(services.db, day), day)


@visits_app.command("deliveries")
def visits_deliveries(ctx: typer.Context, on: Optional[str] = typer.Option(None, "--date", help="Day, YYYY-MM-DD (default: today)."),
                      fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """Show whether each team's lists for a day were delivered."""
    from safecall.delivery import deliveries_for

    app = state(ctx)
    check_format(fmt)
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    print_deliveries(app, deliveries_for(services.db, day), day, fmt)


def print_deliveries(app: AppContext, rows, day, fmt: str = "table") -> None:
    _ = app._
    emit(app, fmt, [_("team"), _("list"), _("status"), _("attempts"), _("last error")],
         [[d.team, app.texts.word("kind", d.kind), app.texts.word("delivery", d.status), d.attempts, d.last_error or ""] for d in rows],
         [{"team": d.team, "kind": d.kind, "status": d.status, "attempts": d.attempts, "last_error": d.last_error} for d in rows],
         title=_("Deliveries for {day}").format(day=day))
    if any(d.status == "failed" for d in rows):
        warning = _("some lists were not delivered; fix the cause and run 'safecall visits deliver'")
        app.err.print("[red]" + markup_safe(warning) + "[/red]")


@visits_app.command("record")
def visits_record(ctx: typer.Context, task: int = typer.Argument(..., help="Task number from the list."),
                  outcome: str = typer.Option(..., "--outcome", help="A visit: safe, not_home, hospitalised, emergency_services, deceased or moved (안전, 부재, 입원, 긴급출동, 사망, 이사). A callback: called_safe, called_referred or called_no_answer (통화안전, 서비스연계, 통화안됨)."),
                  note: Optional[str] = typer.Option(None, "--note", help="What the team saw."),
                  until: Optional[str] = typer.Option(None, "--until", help="hospitalised: pause calls until this day.")):
    """Record what a visit (or an officer's call-back) found; not_home and called_no_answer keep the task open."""
    app = state(ctx)
    chosen = app.texts.keyword(outcome, "outcome", OUTCOME + CALLBACK_OUTCOME, "--outcome")
    pause_until = parse_day(until, "--until") if until else None
    services = app.services()
    recorded = record_outcome(services.db, task, chosen, now=services.now(), tz=services.instance.tz, note=note, until=pause_until)
    still = app._("still open (not home)") if recorded.status == "open" else app._("closed")
    app.say(app._("Task {task}: {outcome}; {state}.").format(task=task, outcome=app.texts.word("outcome", chosen), state=still))


# ---- web app, its accounts and the audit trail (issue 18): thin commands over safecall/web, users.py, audit.py ------
users_app = group("Accounts of the web app (`safecall web`): visit team members, officers, admins.")
GROUPS["users"] = users_app


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
    users.add_user(services.db, username, password, role=role, team=team, teams=[t.name for t in services.instance.settings.teams],
                   now=services.now())
    app.say(app._("Created {user} ({role}{team}).").format(user=username, role=role, team=", " + team if team else ""))
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


# ---- the app ------------------------------------------------------------------------------------------------------
def create_app(make_clock: Callable[[], Clock] = SystemClock, environ: dict | None = None) -> typer.Typer:
    """The root command over the module's groups; tests pass their own clock factory and environment."""
    root = typer.Typer(cls=SafeCallGroup, help="SafeCall: weekly automated wellness-check calls (안심콜).",
                       no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                       context_settings={"obj": Injected(make_clock, environ)})
    root.callback()(root_options)
    for command in (init, demo, doctor, serve, drill, web, audit):
        root.command()(command)
    for name, sub in GROUPS.items():
        root.add_typer(sub, name=name)
    return root


app = create_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
