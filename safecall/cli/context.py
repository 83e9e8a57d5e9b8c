"""What every command shares: the invocation's state, the root group that turns errors into messages, output helpers."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.core import (
    _click as click,
)  # the Click Typer runs on (newer Typer vendors it): loading the other costs start-up

from safecall import commands
from safecall.clock import Clock, SystemClock
from safecall.domain import Disposition
from safecall.errors import InputError, SafeCallError, translated
from safecall.events import json_line
from safecall.i18n import N_, Texts, language
from safecall.instancefiles import configured_language, locate_instance
from safecall.terminal import (
    add_row,
    console,
    csv_text,
    json_text,
    markup_safe,
    plain,
    print_listing,
    progress_bar,
    table,
)

if TYPE_CHECKING:  # the settings' models and the store load only when a command opens the instance (issue 29: start-up)
    from safecall.runs import RunStatus
    from safecall.services import Services
    from safecall.settings import Instance


@dataclass(frozen=True)
class Injected:
    """What `create_app` was given; the same for every invocation of one app."""

    make_clock: Callable[[], Clock]
    environ: dict | None

    def env(self) -> dict:
        return dict(os.environ if self.environ is None else self.environ)


@dataclass
class AppContext:
    """One invocation's state: options of the root command, language, consoles, and the services once opened."""

    make_clock: Callable[[], Clock]
    environ: dict
    config_option: str | None = None
    out: Console = field(default_factory=console)
    err: Console = field(default_factory=lambda: console(stderr=True))
    _services: Services | None = field(default=None, repr=False)

    @cached_property
    def texts(self) -> Texts:
        # Chosen on first use, when --config is known: the instance's `language` setting counts.
        return Texts(language(self.environ, configured_language(self.root())))

    def _(self, message: str) -> str:
        return self.texts._(message)

    def root(self) -> Path:
        return locate_instance(self.config_option, self.environ, Path.cwd())

    def instance(self) -> Instance:
        from safecall.settings import load_instance  # pydantic and the settings' models: not for --help

        return load_instance(self.root(), self.environ)

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None

    def services(self, check_schema: bool = True) -> Services:
        if self._services is None:
            from safecall.services import (
                Services,
            )  # the store, sqlalchemy and the lifecycle: only for a command that needs them

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


# Click's exits, aborts and usage errors go on to Click, which reports them (`click` is the Click Typer runs on; newer
# Typer vendors it and has its own Exit and Abort).
CLICK_FLOW = (typer.Exit, typer.Abort, click.ClickException)


class SafeCallGroup(TyperGroup):
    """The root command: help in the user's language;
    errors become a short message and exit code 1, never a traceback."""

    def main(self, args=None, *rest, **kwargs):
        injected = self.context_settings.get("obj")
        environ = injected.env() if isinstance(injected, Injected) else dict(os.environ)
        # Help is translated before Click parses --config, so the option is looked up here.
        root = locate_instance(config_argument(sys.argv[1:] if args is None else list(args)), environ, Path.cwd())
        translate_help(self, Texts(language(environ, configured_language(root))))
        return super().main(args, *rest, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.UsageError as exc:  # in the root options, before the invocation's state exists
            from safecall.usage_errors import in_language

            injected = self.context_settings.get("obj")
            environ = injected.env() if isinstance(injected, Injected) else dict(os.environ)
            root = locate_instance(config_argument(list(args)), environ, Path.cwd())
            raise in_language(exc, Texts(language(environ, configured_language(root)))) from exc

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError as exc:  # a command's usage, said in the user's language; Typer shows it
            from safecall.usage_errors import in_language

            raise in_language(exc, invocation(ctx).texts) from exc
        except CLICK_FLOW:
            raise
        except InputError as exc:
            fail(ctx, exc.translated(invocation(ctx)._), exc.problems)
        except SafeCallError as exc:
            fail(ctx, exc.translated(invocation(ctx)._))
        except Exception as exc:
            if database_error(exc):  # a read outside a transaction met a locked or broken database
                from safecall.store.db import explain

                fail(ctx, explain(exc, "the instance"))
            unexpected(ctx, exc)


def database_error(exc: Exception) -> bool:
    """Whether it is SQLAlchemy's OperationalError; sqlalchemy is not imported for it (a command that never opened the
    database cannot raise one, and --help must not load it)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.OperationalError)


def config_argument(args: list[str]) -> str | None:
    """The value of a leading `--config X` or `--config=X`, the root option, if given."""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            return None  # a command: later arguments are its own
    return None


# The services systemd runs (deploy/systemd/): their log is JSON lines, and so is the error they stop on.
FOREGROUND_COMMANDS = ("scheduler", "worker", "serve", "web")


def fail(ctx, message: str, problems: Sequence[str] = ()) -> None:
    app = invocation(ctx)
    problems = [translated(problem, app._) for problem in problems]
    if ctx.invoked_subcommand in FOREGROUND_COMMANDS:
        typer.echo(
            json_line(
                "error", "safecall.cli", "fatal", command=ctx.invoked_subcommand, message=message, problems=problems
            ),
            err=True,
        )
        raise typer.Exit(1)
    # Each line of a message on its own line: plain() would show a newline as U+FFFD and join two problems.
    first, *more = message.split("\n")
    app.err.print("[red]" + app._("error:") + "[/red] ", markup_safe(first), markup=True, sep="")  # names from files
    for line in more:
        app.err.print(f"  {plain(line)}", markup=False)
    for problem in problems:
        app.err.print(f"  - {plain(problem)}", markup=False)
    raise typer.Exit(1)


def unexpected(ctx, exc: Exception) -> None:
    """A defect or an outside failure nobody foresaw: details go to a log file, the user gets one line and a hint."""
    app = invocation(ctx)
    if app.environ.get("SAFECALL_DEBUG"):
        raise exc
    where = commands.log_failure(app.environ, ctx.command_path, "".join(traceback.format_exception(exc)))
    if ctx.invoked_subcommand in FOREGROUND_COMMANDS:
        typer.echo(
            json_line(
                "error",
                "safecall.cli",
                "fatal",
                command=ctx.invoked_subcommand,
                message=f"{type(exc).__name__}: {exc}",
                details=str(where) if where else None,
            ),
            err=True,
        )
        raise typer.Exit(1)
    app.err.print(
        "[red]" + app._("error:") + "[/red] ",
        markup_safe(
            app._("SafeCall stopped on an unexpected problem ({kind}: {detail}).").format(
                kind=type(exc).__name__, detail=exc
            )
        ),
        markup=True,
        sep="",
    )
    hint = app._(
        "Details are in {log}. Run `safecall doctor`; if the problem stays, "
        "send that file to whoever maintains SafeCall."
    )
    app.err.print(plain(hint.format(log=where or app._("(no log file could be written)"))), markup=False)
    raise typer.Exit(1)


def translate_help(command: click.Command, texts: Texts, local_context: type | None = None) -> None:
    """Help of every command and option in the user's language (msgids are the English help in the code)."""
    from safecall.helpchrome import SUBCOMMAND_METAVAR, context_class, label_option_type, set_chrome

    if local_context is None:
        set_chrome(texts)
        local_context = context_class(texts)
    command.context_class = local_context  # Click's own hook: its formatter writes "Usage: " in the language
    command.options_metavar = texts._(OPTIONS_METAVAR)
    if isinstance(command, typer.core.TyperGroup) or hasattr(command, "subcommand_metavar"):
        command.subcommand_metavar = texts._(SUBCOMMAND_METAVAR)
    for param in command.params:
        if isinstance(param, TyperArgument | TyperOption) and param.help:  # the parameters Typer makes have help
            param.help = help_text(param.help, texts)
        label_option_type(param, texts)
    if command.help:
        command.help = help_text(command.help, texts)
    if command.short_help:
        command.short_help = help_text(command.short_help, texts)
    if getattr(command, "_help_option", False) is None:  # Click 8.2+ builds --help once per command and keeps it
        names = click.Context(command, help_option_names=command.context_settings.get("help_option_names", ["--help"]))
        option = command.get_help_option(names)
        if option is not None:
            option.help = texts._(HELP_OPTION)
            label_option_type(option, texts)
    for sub in getattr(command, "commands", {}).values():
        translate_help(sub, texts, local_context)


def help_text(text: str, texts: Texts) -> str:
    """A help text in the language, escaped: Typer reads help as Rich markup,
    which would drop "[web]" from "[web] host"."""
    from rich.markup import escape

    return escape(texts._(text))


HELP_OPTION = N_("Show this message and exit.")
OPTIONS_METAVAR = N_("[OPTIONS]")


def emit(
    app: AppContext,
    fmt: str,
    headers: list[str],
    rows: list[list],
    records: list[dict] | dict,  # JSON: the records, or one object
    title: str | None = None,
    whole: tuple[int, ...] = (),
) -> None:
    """One listing as a table (people read it),
    CSV (Excel or a pipe) or JSON (programs: English keys, stored values)."""
    if fmt == "json":
        typer.echo(json_text(records), nl=False)
    elif fmt == "csv":
        typer.echo(csv_text(headers, rows), nl=False)
    elif not rows:  # said in a line: an empty table reads like a listing that failed to load
        app.say(app._("{title}: none.").format(title=title) if title else app._("Nothing to show."))
    else:
        print_listing(app.out, headers, rows, title=title, whole=whole)


def check_format(fmt: str, allowed: tuple[str, ...] = ("table", "csv", "json")) -> None:
    if fmt not in allowed:
        raise InputError(N_("--format: unknown format {fmt!r} (use {choices})"), fmt=fmt, choices=", ".join(allowed))


FORMAT_HELP = "table, csv or json."


def group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True)


# ---- dialling a run with a progress bar, and a run's status: shared by the groups that launch runs ----


def progress(app: AppContext) -> progress_bar:
    return progress_bar(app.out, app._("calling"), app._("people done"))


def dial(app: AppContext, name: str, run_id: int) -> None:
    services = app.services()
    with progress(app) as update:
        status = commands.dial_run(services, name, run_id, on_progress=update)
    print_status(app, status)


def print_status(app: AppContext, status: RunStatus, fmt: str = "table", note: str | None = None) -> None:
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
    results = [
        (d, status.attempts_by_disposition[d])
        for d in list(Disposition) + ["in progress"]
        if status.attempts_by_disposition.get(d)
    ]
    if fmt == "json":
        typer.echo(
            json_text(
                {
                    "run": run.id,
                    "campaign": run.campaign,
                    "week_start": run.week_start,
                    "status": run.status,
                    **{key: value for key, _label, value in counts},
                    "attempts_by_result": dict(results),
                    "rules_note": note,
                }
            ),
            nl=False,
        )
        return
    if fmt == "csv":
        typer.echo(
            csv_text(
                [_("what"), _("count")],
                [[label, value] for _key, label, value in counts]
                + [[app.texts.word("disposition", d), n] for d, n in results],
            ),
            nl=False,
        )
        return
    title = _("Run {run}: {campaign}, week of {week} ({status})").format(
        run=run.id, campaign=run.campaign, week=run.week_start, status=app.texts.word("run", run.status)
    )
    grid = table(_("what"), _("count"), title=title, show_header=False)
    grid.columns[1].justify = "right"
    for _key, label, value in counts:
        add_row(grid, [label, value])
    app.out.print(grid)
    if not results:  # said in a line: an empty table reads like one that failed to load
        app.say(_("{title}: none.").format(title=_("Attempts by result")))
        return
    attempts = table(_("attempt result"), _("count"), title=_("Attempts by result"))
    attempts.columns[1].justify = "right"
    for disposition, count in results:
        add_row(attempts, [app.texts.word("disposition", disposition), count])
    app.out.print(attempts)
    if note:
        app.say(note)
