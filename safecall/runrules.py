"""The rules a run dials and settles by: its campaign and IVR flow as they were when it was launched.

A run keeps them as JSON text (CampaignRun.rules), so an edit of campaigns/*.toml or ivr/*.toml applies
from the next run; `safecall campaign apply` moves open runs to the edited files on purpose, counting up
CampaignRun.rules_version, which tells every process holding the old rules to read them again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from safecall.campaign import CampaignDef, load_campaign
from safecall.domain import RunState
from safecall.errors import SafeCallError
from safecall.events import log_event
from safecall.i18n import N_
from safecall.ivr import IvrFlow, load_flow

if TYPE_CHECKING:  # the store loads in the functions that write: `campaign status` compares rules without the ORM
    from safecall.settings import Instance
    from safecall.store import Database

log = logging.getLogger("safecall.runrules")


def snapshot_text(definition: CampaignDef, flow: IvrFlow) -> str:
    """The rules as a run keeps them: the same files always give the same text."""
    return json.dumps(
        {"campaign": definition.model_dump(mode="json"), "flow": flow.model_dump(mode="json")},
        ensure_ascii=False,
        sort_keys=True,
    )


def files_snapshot(instance: Instance, name: str) -> str:
    """The campaign's rules as its files say now,
    as a run launched now keeps them (an invalid campaign is an InputError)."""
    definition = load_campaign(instance, name)
    return snapshot_text(definition, load_flow(instance.ivr_dir, definition.ivr_flow))


def files_snapshot_if_valid(instance: Instance, name: str) -> str | None:
    try:
        return files_snapshot(instance, name)
    except SafeCallError:  # no such campaign, or not valid: the run takes its rules when first dialled
        return None


def parse_snapshot(text: str) -> tuple[CampaignDef, IvrFlow]:
    data = json.loads(text)
    return CampaignDef.model_validate(data["campaign"]), IvrFlow.model_validate(data["flow"])


def differences(kept: str, current: str) -> list[str]:
    """The keys whose values differ between two snapshots, e.g. 'campaign.retry.spacing', 'flow.prompts.greeting'."""
    found: list[str] = []
    _compare(json.loads(kept), json.loads(current), "", found)
    return found


def _compare(old: Any, new: Any, path: str, found: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            _compare(old.get(key), new.get(key), f"{path}.{key}" if path else str(key), found)
    elif old != new:
        found.append(path)


@dataclass(frozen=True)
class Applied:
    run_id: int
    version: int
    changed: list[str]  # the keys that changed, as `differences` names them


def apply_rules(db: Database, campaign: str, text: str, *, now: datetime) -> list[Applied]:
    """Move the campaign's open runs to the rules `text` (validated by the caller), each audited; the runs moved.

    A run whose rules are `text` already is left alone. Its version counts up, so every process that dials or
    settles it reads the new rules (a dialer within half a minute); calls in flight finish under the old ones.
    """
    import sqlalchemy as sa
    from sqlmodel import col, select

    from safecall.store import CampaignRun, StoreError, audit, changed_rows, stored_id, table_of

    runs_table = table_of(CampaignRun)
    applied = []
    with db.transaction() as session:
        runs = session.exec(
            select(CampaignRun)
            .where(CampaignRun.campaign == campaign, CampaignRun.status == RunState.OPEN)
            .order_by(col(CampaignRun.id))
        ).all()
        for run in runs:
            if run.rules == text:
                continue
            changed = differences(run.rules, text) if run.rules else ["*"]
            run_id, version = stored_id(run), run.rules_version + 1
            moved = changed_rows(
                session.execute(
                    sa.update(runs_table)
                    .where(runs_table.c.id == run_id, runs_table.c.rules_version == version - 1)
                    .values(rules=text, rules_version=version)
                )
            )
            if moved != 1:
                raise StoreError(N_("run {run} was changed by another process meanwhile; try again"), run=run_id)
            audit(
                session,
                at=now,
                action="campaign.apply",
                subject=f"run {run_id}",
                detail=f"campaign={campaign} version={version} changed={','.join(changed)}",
            )
            applied.append(Applied(run_id, version, changed))
    for each in applied:
        log_event(
            log, "run_rules_applied", campaign=campaign, run=each.run_id, version=each.version, changed=each.changed
        )
    return applied


def rules_differences(db: Database, run_id: int, current: str | None) -> list[str] | None:
    """How an open run's rules differ from the files' (`current`; None: the files are not valid now): the keys, [] if
    none; None when there is nothing to compare (a closed run, or one that takes its rules when first dialled)."""
    from safecall.store import CampaignRun

    with db.session() as session:
        run = session.get(CampaignRun, run_id)
    return None if run is None else kept_differences(run, current)


def kept_differences(run: Any, current: str | None) -> list[str] | None:
    """`rules_differences` of a run already read (a CampaignRun, or a Core row with its status and rules)."""
    if run.status != RunState.OPEN or run.rules is None or current is None:
        return None
    return differences(run.rules, current)
