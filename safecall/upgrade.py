"""`safecall upgrade check`: is this instance ready for this release? Every problem at once, each with its fix.

An office upgrading found each command refusing on one problem at a time (the SMS provider, then its keys, then a
campaign's text). This reads every file of the instance on its own, so one broken file does not hide the next,
resolves every secret an enabled part needs, checks every campaign, and says what the database upgrade will do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from safecall.configfiles import coercion_problems, validation_problems
from safecall.errors import ConfigError, Message, SafeCallError
from safecall.i18n import N_
from safecall.instancefiles import read_toml
from safecall.settings import Instance, Settings, TrunksFile
from safecall.telephony.kinds import parse_trunk


@dataclass(frozen=True)
class Finding:
    problem: str  # a Message naming the file and key
    fix: str  # a Message: what to do
    # False for a campaign: it does not keep the database from being upgraded; until it is fixed its run does not
    # start and the officers are told (scheduler.py), while every other campaign runs.
    blocking: bool = True


@dataclass(frozen=True)
class Report:
    problems: list[Finding]
    database: str | None  # what `db upgrade` will do (a Message), None when the database could not be read
    newer_database: bool  # the database belongs to a newer release: this one must not touch it


FIX_EDIT = N_("edit the file as the message says (CHANGELOG.md lists what this release changed)")
FIX_QUOTES = N_("remove the quotes, as the message shows")
FIX_SECRET = N_(
    "give the service this secret: an environment variable in its EnvironmentFile, or a file under "
    'LoadCredential= named by { file = "..." } (docs/operations.md, "Secrets")'
)
FIX_CAMPAIGN = N_(
    "fix campaigns/{name}.toml as the message says, then run `safecall campaign validate {name}`; until then "
    "its weekly run does not start and the officers are told once a week"
)


def check_instance(root: Path, environ: Mapping[str, str]) -> tuple[list[Finding], Instance | None]:
    """Every problem of the settings, trunks, secrets and campaigns; the instance when its files could be read."""
    from safecall.campaign import check_campaign, list_campaigns
    from safecall.doctor import secret_checks

    findings: list[Finding] = []
    settings_path, trunks_path = root / "config" / "safecall.toml", root / "config" / "trunks.toml"
    settings = _parsed(Settings, settings_path, findings)
    try:
        raw_trunks = read_toml(trunks_path)
    except ConfigError as exc:
        findings.append(Finding(exc.message(), Message(FIX_EDIT)))
        raw_trunks = None
    trunks = None
    if raw_trunks is not None:
        if isinstance(raw_trunks.get("trunks"), dict):
            parsed = {}
            for name, data in raw_trunks["trunks"].items():  # each trunk on its own: one bad trunk hides no other
                try:
                    parsed[name] = parse_trunk(name, data, trunks_path)
                except ConfigError as exc:
                    findings += [Finding(line, Message(FIX_EDIT)) for line in _lines(exc)]
            if len(parsed) < len(raw_trunks["trunks"]):
                raw_trunks = None
            else:
                raw_trunks["trunks"] = parsed
        if raw_trunks is not None:
            trunks = _parsed(TrunksFile, trunks_path, findings, raw_trunks)
    if settings is None or trunks is None:
        # The campaigns' own files still, so that they are not found one upgrade check later.
        from safecall.campaign import CampaignDef

        for path in sorted((root / "campaigns").glob("*.toml")):
            findings += [
                Finding(f.problem, Message(FIX_CAMPAIGN, name=path.stem), blocking=False)
                for f in _found(CampaignDef, path)
            ]
        return findings, None
    instance = Instance(root=root.absolute(), settings=settings, trunks=trunks, environ=dict(environ))
    for check in secret_checks(instance):
        if not check.ok:
            findings.append(
                Finding(Message(N_("{name}: {detail}"), name=check.name, detail=check.detail), Message(FIX_SECRET))
            )
    for name in list_campaigns(instance):
        _, problems = check_campaign(instance, name)
        findings += [Finding(problem, Message(FIX_CAMPAIGN, name=name), blocking=False) for problem in problems]
    return findings, instance


def upgrade_report(root: Path, environ: Mapping[str, str]) -> Report:
    """The instance's problems and what the database upgrade will do."""
    from safecall.store import Database

    findings, instance = check_instance(root, environ)
    if instance is None:
        return Report(findings, None, False)
    try:
        url = instance.database_url()
    except ConfigError:
        return Report(findings, None, False)  # the missing secret is among the findings
    db = Database(url, busy_timeout=instance.settings.sqlite_busy_timeout_seconds)
    try:
        state = db.schema_state()
    except SafeCallError as exc:
        findings.append(Finding(exc.message(), Message(N_("make the database reachable, then run the check again"))))
        return Report(findings, None, False)
    finally:
        db.dispose()
    if state.newer:
        findings.append(
            Finding(
                db.newer_error(state).message(),
                Message(N_('do not upgrade with this release; see docs/operations.md, "Rolling back"')),
            )
        )
        return Report(findings, None, True)
    if state.current == state.head:
        database = Message(
            N_("the database is at schema revision {head}: `safecall db upgrade` has nothing to do"), head=state.head
        )
    elif state.current is None and not state.has_tables:
        database = Message(
            N_("the database is new: it is created at schema revision {head} on first use"), head=state.head
        )
    else:
        where = N_("beside the SQLite file") if db.is_sqlite else N_("with pg_dump in {folder}")
        database = Message(
            N_(
                "`safecall db upgrade` will take the database from schema revision {current} to {head}, "
                "after a backup {where}"
            ),
            current=state.describe(),
            head=state.head,
            where=Message(where, folder=instance.backup_dir),
        )
    return Report(findings, database, False)


def _parsed(model, path: Path, findings: list[Finding], data: dict | None = None):
    """The file as `model`, or None with its problems (and its values taken only by coercion) added to `findings`."""
    try:
        data = read_toml(path) if data is None else data
    except ConfigError as exc:
        findings.append(Finding(exc.message(), Message(FIX_EDIT)))
        return None
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        try:  # only quoted numbers or true/false: name them, and read the rest as the last release did to check it too
            parsed = model.model_validate(data, strict=False)
        except ValidationError:
            findings += [Finding(problem, Message(FIX_EDIT)) for problem in validation_problems(path, exc)]
            return None
    quoted = coercion_problems(model, data, path)
    findings += [Finding(problem, Message(FIX_QUOTES)) for problem in quoted]
    return parsed


def _found(model, path: Path) -> list[Finding]:
    found: list[Finding] = []
    _parsed(model, path, found)
    return found


def _lines(exc: ConfigError) -> list[str]:
    message = exc.message()
    return list(getattr(message, "lines", None) or [message])
