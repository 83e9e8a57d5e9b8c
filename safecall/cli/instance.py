"""Instance commands: init, demo, doctor, serve; settings, database and trunk checks."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer
from rich.cells import cell_len

from safecall import commands
from safecall.cli.context import AppContext, group, print_status, progress, state
from safecall.errors import translated
from safecall.terminal import json_text, markup_safe, plain

config_app = group("Settings of this instance.")
trunk_app = group("Telephony trunks (config/trunks.toml).")
db_app = group("The database: schema revision and upgrades.")
upgrade_app = group("Moving this instance to a new SafeCall release (CHANGELOG.md).")


def init(ctx: typer.Context, directory: Path = typer.Argument(..., help="Folder for the new instance.")):
    """Create a new instance folder from the shipped defaults."""
    from safecall.settings import scaffold_instance  # pydantic and the settings' models: not for --help

    app = state(ctx)
    created = scaffold_instance(directory)
    app.say(app._("Created instance in {folder}:").format(folder=directory.absolute()))
    for path in created:
        app.say(f"  {path}")
    app.say(
        app._("Use it with: safecall --config {folder} ...  (or export SAFECALL_CONFIG={folder})").format(
            folder=directory
        )
    )


def demo(
    ctx: typer.Context,
    directory: Path | None = typer.Option(
        None, "--dir", help="Keep the demo instance here (default: a new temporary folder)."
    ),
):
    """Run a whole weekly campaign on a synthetic roster and a simulated trunk, in accelerated time."""
    from safecall.demo import run_demo

    app = state(ctx)
    target = directory or Path(tempfile.mkdtemp(prefix="safecall-demo-"))
    app.say(app._("Demo instance: {folder}").format(folder=target.absolute()))
    with progress(app) as update:
        result = run_demo(target, app.make_clock(), on_progress=update)
    roster = result.roster
    app.say(
        app._("Roster: {added} people imported, {without} without consent (stored, never called).").format(
            added=roster.added, without=len(roster.without_consent)
        )
    )
    print_status(app, result.status)
    app.say(app._("Lists for the teams:"))
    for path in result.files:
        app.say(f"  {path}")


def doctor(
    ctx: typer.Context, wait: float = typer.Option(10, "--wait", help="Seconds to wait for each trunk's FastAGI check.")
):
    """Check the instance: database integrity and schema, permissions, campaigns and every trunk."""
    from safecall.doctor import run_doctor

    app = state(ctx)
    print_checks(app, run_doctor(app.services(check_schema=False), wait_seconds=wait))


def serve(
    ctx: typer.Context,
    campaign_name: str = typer.Option(
        "weekly-safe-call", "--campaign", help="Campaign whose trunk and IVR flow to serve."
    ),
    seconds: float | None = typer.Option(None, "--seconds", help="Stop after this long (default: until interrupted)."),
):
    """Host the trunk's IVR side (Twilio webhooks or FastAGI) without dialling; `campaign run` hosts it too."""
    app = state(ctx)
    commands.serve_ivr(
        app.services(),
        campaign_name,
        seconds,
        on_started=lambda: app.say(
            app._("Serving the IVR of {campaign!r}; Ctrl-C stops.").format(campaign=campaign_name)
        ),
    )
    app.say(app._("Stopped."))


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Print the effective settings; secrets are masked."""
    from safecall.settings import show_settings  # pydantic and the settings' models: not for --help

    app = state(ctx)
    shown = show_settings(app.instance())
    if as_json:
        typer.echo(json_text(shown), nl=False)
        return
    for key, value in shown.items():
        app.say(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")


def print_checks(app: AppContext, checks) -> None:
    from safecall.telephony.base import next_step  # the trunks' interface loads the IVR flow models: not for --help

    passed, failed = app._("ok"), app._("FAIL")
    width = max(cell_len(passed), cell_len(failed))  # the marks line up in either language
    for check in checks:
        mark = (
            f"[green]{passed}[/green]" + " " * (width - cell_len(passed))
            if check.ok
            else f"[red]{failed}[/red]" + " " * (width - cell_len(failed))
        )
        app.out.print(f"{mark} {markup_safe(translated(check.name, app._))}: ", end="")
        app.say(translated(check.detail, app._))
        step = next_step(check)
        if step:
            app.say("  " + app._("next step: {step}").format(step=app._(step)))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@db_app.command("status")
def db_status(ctx: typer.Context):
    """Show the database's schema revision and whether it needs `safecall db upgrade`."""
    app = state(ctx)
    db = app.services(check_schema=False).db
    schema = db.schema_state()
    app.say(app._("database: {url}").format(url=db.safe_url()))
    app.say(
        app._("schema revision: {current}; this SafeCall: {head}").format(current=schema.describe(), head=schema.head)
    )
    if schema.has_tables and schema.current != schema.head:
        app.say(app._("needs: safecall db upgrade"))
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    no_backup: bool = typer.Option(
        False, "--no-backup", help="PostgreSQL: upgrade without pg_dump's backup, when you took one yourself."
    ),
):
    """Bring the database to this SafeCall's schema, in place, after `upgrade check` passes and a backup is taken."""
    from safecall.backup import backup_before_upgrade
    from safecall.upgrade import upgrade_report

    app = state(ctx)
    report = upgrade_report(app.root(), app.environ)
    if report.problems:
        print_findings(app, report)
    if any(finding.blocking for finding in report.problems):
        app.err.print(
            plain(
                app._(
                    "Nothing was upgraded: fix the problems above first (they are all of them), "
                    "then run `safecall db upgrade` again."
                )
            ),
            markup=False,
        )
        raise typer.Exit(1)
    services = app.services(check_schema=False)
    db = services.db
    upgrade = db.upgrade(
        lambda head: backup_before_upgrade(db, services.instance.backup_dir, head, services.now()),
        take_backup=not no_backup,
        rules_of_campaign=services.rules_snapshot_if_valid,
    )  # open runs keep the rules of today's files
    if not upgrade.applied:
        app.say(app._("The database is already at schema revision {head}; nothing to do.").format(head=upgrade.head))
        return
    app.say(
        app._("Upgraded {url}: applied {revisions}.").format(url=db.safe_url(), revisions=", ".join(upgrade.applied))
    )
    if upgrade.backup:
        app.say(app._("The database as it was is kept in {path}").format(path=upgrade.backup))


def print_findings(app: AppContext, report) -> None:
    """`upgrade check`'s problems, each with its fix, then what the database upgrade will do."""
    if report.problems:
        app.say(app._("{count} problems to fix before this release can run:").format(count=len(report.problems)))
    for number, finding in enumerate(report.problems, 1):
        app.say(f"{number}. {translated(finding.problem, app._)}")
        app.say("   " + app._("fix: {fix}").format(fix=translated(finding.fix, app._)))
    if report.database:
        app.say(translated(report.database, app._))


@upgrade_app.command("check")
def upgrade_check(ctx: typer.Context):
    """Check this instance's settings, secrets and campaigns against this release: every problem at once, with its fix."""  # noqa: E501 (a command's help: one line in --help, and its id in the catalogue)
    from safecall.upgrade import upgrade_report

    app = state(ctx)
    report = upgrade_report(app.root(), app.environ)
    print_findings(app, report)
    if report.problems:
        raise typer.Exit(1)
    app.say(app._("Ready: this release can run this instance."))


def backup(
    ctx: typer.Context,
    to: Path | None = typer.Option(None, "--to", help="The backup file (default: a new file in [backup] folder)."),
):
    """Back up the database while the scheduler runs (SQLite's online backup; pg_dump for PostgreSQL)."""
    from safecall.backup import backup_name, take_backup

    app = state(ctx)
    services = app.services(check_schema=False)
    target = to or services.instance.backup_dir / backup_name(services.db, services.now())
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    take_backup(services.db, target)
    app.say(app._("Backed up {url} to {path}").format(url=services.db.safe_url(), path=target))


def restore(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A file `safecall backup` wrote."),
    yes: bool = typer.Option(False, "--yes", help="Replace the database without asking."),
):
    """Replace this instance's database with a backup. Stop the scheduler, web and workers first."""
    from safecall.backup import restore_backup

    app = state(ctx)
    services = app.services(check_schema=False)
    if not yes and not typer.confirm(
        app._("Replace every row of {url} with {path}?").format(url=services.db.safe_url(), path=file)
    ):
        raise typer.Exit(1)
    restore_backup(services.db, file)
    state_after = services.db.schema_state()
    app.say(
        app._("Restored {path} into {url} (schema revision {revision}).").format(
            path=file, url=services.db.safe_url(), revision=state_after.describe()
        )
    )
    if state_after.current != state_after.head:
        app.say(app._("needs: safecall db upgrade"))


@trunk_app.command("check")
def trunk_check(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Trunk name (default: the default trunk)."),
    wait: float = typer.Option(10, "--wait", help="Seconds to wait for Asterisk to reach FastAGI."),
):
    """Check that a trunk is reachable and set up: login, dialplan, FastAGI."""
    app = state(ctx)
    print_checks(app, app.services().check_trunk(name, wait_seconds=wait))
