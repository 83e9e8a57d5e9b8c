"""Campaigns and their weekly runs: plan, validate, drill, launch, run, status."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from safecall import commands
from safecall.commands import parse_day
from safecall.domain import RunState
from safecall.errors import InputError
from safecall.terminal import add_row, json_text, plain, table

if TYPE_CHECKING:  # each command imports what it uses: --help must not load the store or the campaign models
    from safecall.settings import Instance


from safecall.cli.context import FORMAT_HELP, AppContext, check_format, dial, emit, group, print_status, progress, state

campaign_app = group("Campaign definitions and their weekly runs.")


@campaign_app.command("list")
def campaign_list(ctx: typer.Context, fmt: str = typer.Option("table", "--format", help=FORMAT_HELP)):
    """List campaign definitions and their runs."""
    from safecall.campaign import list_campaigns
    from safecall.runs import list_runs

    app = state(ctx)
    check_format(fmt)
    _ = app._
    services = app.services()
    names = list_campaigns(services.instance)
    runs = list_runs(services.db)
    tz = services.instance.tz
    if fmt == "json":
        typer.echo(
            json_text(
                {
                    "campaigns": names,
                    "runs": [
                        {
                            "id": r.id,
                            "campaign": r.campaign,
                            "week_start": r.week_start,
                            "status": r.status,
                            "first_call_at": r.first_call_at.astimezone(tz).isoformat(),
                        }
                        for r in runs
                    ],
                }
            ),
            nl=False,
        )
        return
    if fmt == "table":
        for name in names:
            app.say(name)
    emit(
        app,
        fmt,
        [_("run"), _("campaign"), _("week"), _("status"), _("first call")],
        [
            [
                r.id,
                r.campaign,
                r.week_start,
                app.texts.word("run", r.status),
                r.first_call_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            ]
            for r in runs
        ],
        [],
        whole=(0, 2, 4),
    )


@campaign_app.command("plan")
def campaign_plan(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Campaign name."),
    weeks: int = typer.Option(8, "--weeks", min=1, max=104, help="How many weeks ahead."),
    now: str | None = typer.Option(None, "--now", help="Plan from the week of this time (ISO; default: now)."),
    channels: float | None = typer.Option(
        None, "--channels", help="Channels to estimate the week with (default: the campaign's share of its trunk)."
    ),
    by: str | None = typer.Option(
        None, "--by", help="Day the visit list must be complete, YYYY-MM-DD (default: the week's last calling day)."
    ),
):
    """When the coming weeks' first calls are placed, which move past a holiday, and when the next visit list is complete."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    from safecall.campaign import load_campaign
    from safecall.planning import plan_campaign, plan_lines, spill_warning
    from safecall.policy import plan_weeks, week_start

    app = state(ctx)
    _ = app._
    instance = app.instance()
    definition = load_campaign(instance, name)
    calendar = definition.calendar(instance)
    moment = commands.parse_moment(now, "--now") if now else app.make_clock().now()
    grid = table(
        _("week"),
        _("slot"),
        _("first calls"),
        _("why moved"),
        whole=(0, 1, 2),
        title=_("{campaign}: the next {weeks} weeks").format(campaign=name, weeks=weeks),
    )
    for planned in plan_weeks(
        calendar,
        definition.schedule.weekday,
        definition.schedule.start,
        week_start(moment, calendar.tz),
        weeks,
        now=moment,
    ):
        first = (
            app.texts.day_and_time(planned.first_call.astimezone(calendar.tz))
            if planned.first_call
            else _("no calling day: fix the window")
        )
        add_row(
            grid,
            [
                planned.week,
                app.texts.day_and_time(planned.slot),
                first,
                _(planned.why_moved) if planned.why_moved else "",
            ],
        )
    app.out.print(grid)
    if not commands.has_database(instance):  # the calendar needs no data, and planning never creates a database
        app.say(_("No database yet: import the roster for the estimate of the week's calls."))
        return
    services = app.services()
    plan = plan_campaign(
        services.db,
        definition,
        calendar,
        now=moment,
        by_day=parse_day(by, "--by") if by else None,
        channels=channels or services.campaign_channels(definition),
    )
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
    from safecall.campaign import check_campaign
    from safecall.planning import plan_campaign, spill_warning

    app = state(ctx)
    instance = app.instance()
    definition, problems = check_campaign(instance, name)
    if problems:
        raise InputError(
            app._("campaign {name!r} has {count} problem(s)").format(name=name, count=len(problems)), problems
        )
    assert definition is not None, "check_campaign gives the definition when it finds no problem"
    app.say(app._("campaign {name!r} is valid").format(name=name))
    if instance.settings.testing.fast_retries:  # a test instance's switch: say so wherever it might have been left on
        app.err.print(
            plain(
                app._("warning: ")
                + app._(
                    "[testing] fast_retries is on in config/safecall.toml: retries are not "
                    "held to 30 minutes apart; never on an instance that calls people"
                )
            ),
            markup=False,
        )
    if not commands.has_database(instance):  # no roster yet: nothing to estimate, and validating creates no database
        return
    services = app.services()
    calendar = definition.calendar(instance)
    plan = plan_campaign(
        services.db, definition, calendar, now=services.now(), channels=services.campaign_channels(definition)
    )
    warning = spill_warning(definition, plan, local_time(app, calendar), app._)
    if warning:
        app.err.print(plain(app._("warning: ") + warning), markup=False)


def drill_and_print(
    app: AppContext, name: str, start: datetime, directory: Path | None, trunk_name: str | None
) -> None:
    from safecall.drills import run_drill

    instance = app.instance()  # never app.services(): that would open (and create) the real database
    when = start.astimezone(instance.tz).strftime("%Y-%m-%d %H:%M")

    def announce(folder: Path) -> None:
        app.say(
            app._(
                "Drill of {campaign} from {when}, in virtual time, on a copy of this instance's data "
                "in {folder}. The real database is not touched."
            ).format(campaign=name, when=when, folder=folder)
        )

    with progress(app) as update:
        result = run_drill(
            instance, name, start=start, folder=directory, trunk_name=trunk_name, on_progress=update, on_ready=announce
        )
    print_status(app, result.status)
    if result.clock and result.clock.count:
        from safecall.safety_clock import hours_text

        app.say(
            app._(
                "Safety clock at the drill's end, over {count} visit and call-back tasks: median {median}, p95 {p95}."
            ).format(count=result.clock.count, median=hours_text(result.clock.median), p95=hours_text(result.clock.p95))
        )
    app.say(
        app._("The drill's copy is kept in {folder}.").format(folder=result.folder)
        if result.kept
        else app._("The drill's copy was deleted.")
    )


def drill(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Campaign name."),
    now: str | None = typer.Option(
        None, "--now", help="Play the week from this time (ISO, e.g. 2026-11-23T08:00+09:00; default: now)."
    ),
    directory: Path | None = typer.Option(
        None,
        "--dir",
        help="Keep the drill's copy in this folder (a folder holding one is resumed); "
        "default: a temporary folder, deleted afterwards.",
    ),
    trunk_name: str | None = typer.Option(
        None, "--trunk", help="A simulated trunk to dial through (default: the campaign's)."
    ),
):
    """Rehearse a campaign's week in virtual time on a throwaway copy of this instance's data; real runs are never touched."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    app = state(ctx)
    drill_and_print(
        app, name, commands.parse_moment(now, "--now") if now else app.make_clock().now(), directory, trunk_name
    )


@campaign_app.command("launch")
def campaign_launch(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Campaign name."),
    dial_now: bool = typer.Option(True, "--dial/--no-dial", help="Start dialling after launching."),
    fast: bool = typer.Option(
        False,
        "--fast",
        help="A drill, as 'safecall drill NAME': the week in virtual time on a copy of the data; no real run.",
    ),
):
    """Create this week's run (or resume it if it exists) and dial it."""
    app = state(ctx)
    if fast:
        app.err.print(
            plain(
                app._(
                    "--fast runs a drill on a throwaway copy of this instance's data ('safecall drill NAME'); "
                    "no real run is created or used. Leave out --fast to launch the real run."
                )
            ),
            markup=False,
        )
        drill_and_print(app, name, app.make_clock().now(), None, None)
        return
    services = app.services()
    run, created = commands.launch_week(services, name)
    first = run.first_call_at.astimezone(services.instance.tz).strftime("%Y-%m-%d %H:%M")
    if created:
        app.say(
            app._("Launched run {run} of {campaign} for the week of {week}; first calls {first}.").format(
                run=run.id, campaign=name, week=run.week_start, first=first
            )
        )
    else:
        app.say(
            app._("Run {run} of {campaign} for the week of {week} already exists ({status}); resuming it.").format(
                run=run.id, campaign=name, week=run.week_start, status=app.texts.word("run", run.status)
            )
        )
    if dial_now:
        assert run.id is not None, "a stored run has its id"
        dial(app, name, run.id)


@campaign_app.command("run")
def campaign_run(
    ctx: typer.Context,
    run: int | None = typer.Argument(None, help="Run id (default: every open run)."),
    fast: bool = typer.Option(False, "--fast", hidden=True),
):
    """Dial the due attempts of a run until it closes."""
    commands.refuse_fast(fast)
    app = state(ctx)
    for r in commands.runs_to_dial(app.services(), run):
        app.say(
            app._("Dialling run {run} ({campaign}, week of {week})").format(
                run=r.id, campaign=r.campaign, week=r.week_start
            )
        )
        assert r.id is not None, "a stored run has its id"
        dial(app, r.campaign, r.id)


@campaign_app.command("apply")
def campaign_apply(ctx: typer.Context, name: str = typer.Argument(..., help="Campaign name (campaigns/NAME.toml).")):
    """Move the campaign's open runs to its edited definition and IVR flow, checked first; logged and audited."""
    from safecall.runrules import apply_rules

    app = state(ctx)
    services = app.services()
    applied = apply_rules(
        services.db, name, services.rules_snapshot(name), now=services.now()
    )  # an invalid campaign stops here
    if not applied:
        app.say(
            app._("No open run of campaign {campaign} differs from its files; nothing to do.").format(campaign=name)
        )
    for each in applied:
        app.say(
            app._(
                "Run {run} of campaign {campaign} now follows the edited rules "
                "(version {version}; changed: {changed}); "
                "calls already under way finish under the old ones."
            ).format(run=each.run_id, campaign=name, version=each.version, changed=", ".join(each.changed))
        )


@campaign_app.command("status")
def campaign_status(
    ctx: typer.Context,
    run: int | None = typer.Argument(None, help="Run id (default: the latest run)."),
    fmt: str = typer.Option("table", "--format", help=FORMAT_HELP),
):
    """Show the progress of a run."""
    from safecall.corereads import (
        status_if_current,
    )  # SQLAlchemy Core: the ORM and the store's models cost ~0.5 s to load

    app = state(ctx)
    check_format(fmt)
    instance = app.instance()
    status = status_if_current(instance.database_url(), instance.settings.sqlite_busy_timeout_seconds, run)
    if status is None:  # no database yet, an older revision, no such run, or unreadable: the usual way says what to do
        status = commands.run_to_show(app.services(), run)
    print_status(app, status, fmt, rules_note(app, instance, status.run))


def rules_note(app: AppContext, instance: Instance, run) -> str | None:
    """What to say when an open run's rules are not those of the campaign's files now; None when they are."""
    from safecall.runrules import files_snapshot_if_valid, kept_differences

    current = files_snapshot_if_valid(instance, run.campaign)
    changed = kept_differences(run, current)
    if changed is None and current is None and run.status == RunState.OPEN:
        return app._(
            "The files of campaign {campaign} are not valid now (see 'safecall campaign validate {campaign}'); "
            "run {run} keeps the rules it was launched with."
        ).format(campaign=run.campaign, run=run.id)
    if not changed:
        return None
    return app._(
        "The files of campaign {campaign} changed after run {run} was launched ({changed}); the run keeps the rules "
        "it was launched with. The edit applies from the next run, or now with 'safecall campaign apply {campaign}'."
    ).format(campaign=run.campaign, run=run.id, changed=", ".join(changed))
