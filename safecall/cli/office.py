"""Inactivity signals, the office's reports and IVR prompt audio."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from safecall import commands
from safecall.cli.context import check_format, dial, emit, group, state
from safecall.commands import parse_day
from safecall.errors import InputError
from safecall.i18n import N_
from safecall.terminal import json_text, plain

signals_app = group("Inactivity signals that trigger ad-hoc check calls.")
report_app = group("Reports for the office.")
ivr_app = group("IVR flows and their prompt audio.")


@signals_app.command("import")
def signals_import(
    ctx: typer.Context, file: Path = typer.Argument(..., help="CSV/XLSX: 전화번호 (or person_id), 일자, 종류, 점수.")
):
    """Load inactivity signals (power use, telecom, app data); all or nothing."""
    from safecall.signals import import_signals

    app = state(ctx)
    services = app.services()
    result = import_signals(services.db, file, services.instance.settings, now=services.now())
    app.say(
        app._("Imported {rows} signals from {file}: {added} added, {updated} updated.").format(
            rows=result.rows, file=file, added=result.added, updated=result.updated
        )
    )


@signals_app.command("launch")
def signals_launch(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Campaign whose IVR, trunk and retry rules to use."),
    on: str | None = typer.Option(None, "--date", help="Day of the signals (default: today)."),
    dial_now: bool = typer.Option(True, "--dial/--no-dial", help="Start dialling after launching."),
    fast: bool = typer.Option(False, "--fast", hidden=True),
):
    """Launch an ad-hoc check-call run for the people flagged by that day's signals only."""
    from safecall.signals import launch_signal_check

    commands.refuse_fast(fast)
    app = state(ctx)
    services = app.services()
    day = parse_day(on, "--date") if on else services.today()
    check = launch_signal_check(services, name, day)
    if check is None:
        app.say(app._("No one is flagged by the signals of {day}; nothing to call.").format(day=day))
        return
    message = (
        app._("Launched run {run}: a check call to {people} flagged people ({day}).")
        if check.created
        else app._("Resuming run {run}: a check call to {people} flagged people ({day}).")
    )
    app.say(message.format(run=check.run.id, people=check.people, day=day))
    if dial_now:
        assert check.run.id is not None, "a stored run has its id"
        dial(app, name, check.run.id)


@report_app.command("weekly")
def report_weekly(
    ctx: typer.Context,
    start: str | None = typer.Option(None, "--from", help="First campaign week (a date in it), YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--to", help="Last campaign week, YYYY-MM-DD."),
    fmt: str = typer.Option("table", "--format", help="table, csv, xlsx or json."),
    output: Path | None = typer.Option(None, "--output", help="File for csv/xlsx (default: the outbox)."),
    chart: Path | None = typer.Option(None, "--chart", help="Also draw the weekly rates to this PNG."),
):
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
        emit(
            app,
            fmt,
            [title for _, title in COLUMNS],
            [row.cells() for row in rows],
            [row.record() for row in rows],
            title=app._("Weekly report"),
        )
        if fmt == "table":
            from safecall.drift import drift_flags

            flagged = drift_flags(services.db)
            if flagged:
                app.say(
                    app._("Change detected (변화 감지): {count} people; see 'safecall report drift'.").format(
                        count=len(flagged)
                    )
                )
    else:
        app.say(app._("wrote {path}").format(path=commands.write_report(services, rows, fmt, output)))
    if chart:
        note = commands.draw_report_chart(rows, chart)
        app.say(app._("wrote {path}").format(path=chart))
        if note:
            app.err.print(plain(app._(note)), markup=False)


@ivr_app.command("prompts")
def ivr_prompts(
    ctx: typer.Context,
    flow: str = typer.Option("safe-call", "--flow", help="IVR flow name."),
    from_dir: Path | None = typer.Option(
        None,
        "--from",
        help="Folder of the office's recordings (WAV or MP3), named after the prompts: "
        "greeting.wav, greeting.slow.wav, greeting.loud.wav.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace files that are already there (recorded ones too)."),
):
    """Prompt audio for Asterisk: the office's recordings converted with sox, espeak-ng for the prompts nobody recorded."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    from safecall.ivr import load_flow
    from safecall.telephony.asterisk.prompts import prepare_prompts, sounds_dir

    app = state(ctx)
    instance = app.instance()
    out_dir = sounds_dir(instance.ivr_dir)
    done = prepare_prompts(load_flow(instance.ivr_dir, flow), out_dir, from_dir=from_dir, force=force)
    for recording in done.recorded:
        line = (
            app._("recorded {path} from {source} ({seconds:.1f} s; wideband, .sln16 too)")
            if recording.wideband
            else app._("recorded {path} from {source} ({seconds:.1f} s)")
        )
        app.say(
            line.format(
                path=out_dir / f"{recording.target}.wav", source=recording.source.name, seconds=recording.seconds
            )
        )
    for path in done.written:
        app.say(
            (app._("wrote {path} (espeak-ng: no recording given)") if from_dir else app._("wrote {path}")).format(
                path=path
            )
        )
    for path in done.kept:
        app.say(app._("kept  {path} (already there; --force replaces it)").format(path=path))
    app.say(
        app._("Copy {folder} to Asterisk's sounds folder (e.g. /var/lib/asterisk/sounds/safecall).").format(
            folder=out_dir
        )
    )


@ivr_app.command("try")
def ivr_try(
    ctx: typer.Context,
    flow: str = typer.Argument(..., help="IVR flow name: a file in the instance's ivr/ folder."),
    said: str | None = typer.Option(None, "--said", help="An answer as the recogniser heard it."),
    confidence: float = typer.Option(0.9, "--confidence", help="The recogniser's confidence for --said, 0 to 1."),
    from_file: Path | None = typer.Option(
        None, "--from", help="A UTF-8 text file: one answer a line, optionally a tab and its confidence."
    ),
    fmt: str = typer.Option("table", "--format", help="table or json (one object a line)."),
):
    """What the flow would record for a spoken answer, and why: for tuning a flow's words."""
    from safecall.conversation import STORED, WAIT_REPLY, Ask, Closing, Conversation, Play, Said, Store
    from safecall.ivr import load_flow
    from safecall.speech import judge

    app = state(ctx)
    check_format(fmt, ("table", "json"))
    if (said is None) == (from_file is None):
        raise InputError(N_("give one of --said TEXT or --from FILE"))
    loaded = load_flow(app.instance().ivr_dir, flow)
    if loaded.speech is None:
        raise InputError(N_("flow {flow!r} has no [speech] table: its calls take keys only"), flow=flow)
    if said is not None:
        answers = [(said, confidence)]
    else:
        assert from_file is not None  # exactly one of them was given (checked above)
        answers = _answers_in(from_file)
    for text, heard_with in answers:
        verdict = judge(loaded.speech, text, heard_with)
        # What the call does next, as the conversation of a real call would (the answer stored, if it is one).
        conversation = Conversation(loaded, listens=True, asked=1, waiting=WAIT_REPLY)
        actions = conversation.handle(Said(text, heard_with))
        if actions and isinstance(actions[0], Store):
            actions = conversation.handle(STORED)
        then = next(
            a.closing if isinstance(a, Closing) else a.prompt for a in actions if isinstance(a, (Ask, Closing, Play))
        )
        if fmt == "json":
            typer.echo(
                json_text(
                    {
                        "said": text,
                        "confidence": heard_with if math.isfinite(heard_with) else str(heard_with),
                        "outcome": verdict.outcome,
                        "reason": verdict.reason,
                        "risk": verdict.risk,
                        "records": verdict.outcome if verdict.outcome != "unclear" else None,
                        "then": then,
                    },
                    indent=None,
                ),
                nl=False,
            )
            continue
        shown = f"{heard_with:.0%}" if math.isfinite(heard_with) else str(heard_with)
        outcome = {
            "acknowledged": app._("records acknowledged (well)"),
            "help_requested": app._("records help requested"),
            "unclear": app._("unclear: records nothing and asks again"),
        }[verdict.outcome]
        app.say(
            app._('"{said}" ({confidence}): {outcome}, then {then}').format(
                said=text, confidence=shown, outcome=outcome, then=then
            )
        )
        app.say("  " + verdict.reason + (app._(" [risk: the duty officer is told at once]") if verdict.risk else ""))


def _answers_in(path: Path) -> list[tuple[str, float]]:
    """The answers of an `ivr try --from` file, all or nothing."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(N_("{file}: cannot read it as UTF-8 text ({error})"), file=path, error=error) from None
    answers, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        text, tab, confidence = line.partition("\t")
        try:
            answers.append((text.strip(), float(confidence) if tab else 0.9))
        except ValueError:
            problems.append(f"{path}:{number}: confidence {confidence!r} is not a number (0 to 1)")
    if problems:
        raise InputError(N_("{file}: {count} line(s) could not be read"), problems, file=path, count=len(problems))
    return answers
