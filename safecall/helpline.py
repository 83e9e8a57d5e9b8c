"""A human on "help": what came of a call for help (the transfer, the message).

The call's steps are its conversation's (safecall.conversation), office hours the flow's (IvrFlow.office_open);
this module writes what the trunks report, one HelpCall row per attempt. The attempt's answer (help) is
stored before any of this, so a crash here never loses the call for help: the call-back task is made either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from safecall import glossary
from safecall.conversation import TRANSFER_RESULTS
from safecall.store import Attempt, Database, HelpCall, stored_id

TRANSFER_KOREAN = glossary.TRANSFER


def _row(session, token: str) -> HelpCall | None:
    attempt = session.exec(select(Attempt).where(Attempt.token == token)).first()
    if attempt is None:
        return None
    row = session.exec(select(HelpCall).where(HelpCall.attempt_id == attempt.id)).first()
    if row is None:
        row = HelpCall(attempt_id=attempt.id, run_id=attempt.run_id, person_id=attempt.person_id)
    return row


def _write(db: Database, token: str, **values) -> bool:
    """Set `values` on the attempt's HelpCall row, made if it is not there; False for an unknown token.

    Two reports on one call may come at once (Twilio's <Record> action and its recording's status callback): the
    one that loses the race to make the row writes again, onto the row the other made."""
    for last_try in (False, True):
        try:
            with db.transaction() as session:
                row = _row(session, token)
                if row is None:
                    return False
                for key, value in values.items():
                    setattr(row, key, value)
                session.add(row)
            return True
        except sa.exc.IntegrityError:
            if last_try:
                raise
    return False


def record_transfer(
    db: Database, token: str, result: str, at: datetime, connected_seconds: float | None = None
) -> bool:
    """What came of the transfer of call `token`; False for an unknown token or result."""
    if result not in TRANSFER_RESULTS:
        return False
    return _write(db, token, transfer=result, transfer_at=at, connected_seconds=connected_seconds)


def record_message(db: Database, token: str, ref: str, seconds: float, at: datetime) -> bool:
    """The message call `token` left: `ref` names the recording (a file path on the PBX, or twilio_ref)."""
    return _write(db, token, message_ref=ref, message_seconds=round(float(seconds), 1), message_at=at)


@dataclass(frozen=True)
class HelpOutcome:
    """What the officer's page shows of one call for help."""

    id: int
    transfer: str | None
    transfer_at: datetime | None
    message: bool
    message_seconds: float | None
    message_at: datetime | None

    @property
    def transfer_korean(self) -> str:
        return TRANSFER_KOREAN.get(self.transfer or "", "")


def _outcome(row: HelpCall) -> HelpOutcome:
    return HelpOutcome(
        stored_id(row), row.transfer, row.transfer_at, bool(row.message_ref), row.message_seconds, row.message_at
    )


def help_calls(db: Database, run_id: int, person_id: int) -> list[HelpOutcome]:
    """The calls for help of a person in a run (a call-back task's), oldest first."""
    with db.session() as session:
        rows = session.exec(
            select(HelpCall)
            .where(HelpCall.run_id == run_id, HelpCall.person_id == person_id)
            .order_by(col(HelpCall.id))
        ).all()
    return [_outcome(r) for r in rows]


def help_calls_of_tasks(db: Database, tasks: list) -> dict[int, list[HelpOutcome]]:
    """For the call-back list: each task's calls for help (by task id), in one query."""
    if not tasks:
        return {}
    by_key: dict[tuple[int, int], list[HelpOutcome]] = {}
    with db.session() as session:
        rows = session.exec(
            select(HelpCall).where(col(HelpCall.person_id).in_({t.person_id for t in tasks})).order_by(col(HelpCall.id))
        ).all()
    for row in rows:
        by_key.setdefault((row.run_id, row.person_id), []).append(_outcome(row))
    return {t.id: by_key[(t.run_id, t.person_id)] for t in tasks if (t.run_id, t.person_id) in by_key}
