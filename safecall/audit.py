"""The audit trail: who did what, when it was for and when it was really written. `safecall audit` reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from safecall.errors import InputError, Message
from safecall.i18n import N_
from safecall.store import AuditChain, AuditEvent, Database, audit
from safecall.store.db import chain_hash


def audit_events(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """The trail, newest first; `since`/`until` filter on the real time it was written; `action` may end in '*'."""
    with db.session() as session:
        query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        if action:
            query = query.where(
                col(AuditEvent.action).like(action[:-1] + "%")
                if action.endswith("*")
                else col(AuditEvent.action) == action
            )
        if subject:
            query = query.where(AuditEvent.subject == subject)
        if since:
            query = query.where(col(AuditEvent.real_at) >= since)
        if until:
            query = query.where(col(AuditEvent.real_at) < until)
        return list(session.exec(query))


def log_access(
    db: Database, *, at: datetime, action: str, subject: str, detail: str = "", actor: str | None = None
) -> None:
    """A read or an export of personal data (or a refused login), in its own transaction:
    the read itself changes nothing."""
    with db.transaction() as session:
        audit(session, at=at, action=action, subject=subject, detail=detail, actor=actor)


# ---- the tamper-evident chain (issue 28) --------------------------------------------------------------------------
# Rows are kept at least this long: 개인정보의 안전성 확보조치 기준 asks for 2 years of access records where sensitive
# data is processed. SafeCall never deletes an audit row; docs/audit.md says so and how to archive older ones.
RETENTION_DAYS = 2 * 365 + 1


@dataclass
class ChainReport:
    rows: int
    head: str  # the last row's hash: written down elsewhere (the monthly review prints it), a rewrite shows
    problems: list[Message]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(db: Database, *, batch: int = 5_000) -> ChainReport:
    """Recompute the chain: an edited row, a deleted one (a gap, or a head beyond the last row) or one written
    around the chain (no seq) is a problem naming the row."""
    problems: list[Message] = []
    expected_seq, previous, rows = 1, "", 0
    with db.session() as session:
        outside = list(
            session.exec(
                select(AuditEvent.id).where(col(AuditEvent.seq).is_(None)).order_by(col(AuditEvent.id)).limit(20)
            )
        )
        for row_id in outside:
            problems.append(
                Message(N_("audit row {id} is outside the chain (written around it, or its place erased)"), id=row_id)
            )
        last = 0
        while True:
            chunk = list(
                session.exec(
                    select(AuditEvent).where(col(AuditEvent.seq) > last).order_by(col(AuditEvent.seq)).limit(batch)
                )
            )
            if not chunk:
                break
            for event in chunk:
                assert event.seq is not None  # the query chose rows with seq > last
                rows += 1
                if event.seq != expected_seq:
                    problems.append(
                        Message(
                            N_("audit rows {first} to {last} of the chain are missing (deleted)"),
                            first=expected_seq,
                            last=event.seq - 1,
                        )
                    )
                elif event.hash != chain_hash(previous, event):
                    problems.append(
                        Message(
                            N_("audit row {id} (number {seq} in the chain) was changed after it was written"),
                            id=event.id,
                            seq=event.seq,
                        )
                    )
                previous, expected_seq, last = event.hash or "", event.seq + 1, event.seq
        head = session.get(AuditChain, 1)
    if head is None:
        problems.append(Message(N_("the audit chain's head is missing")))
    elif head.seq != expected_seq - 1:
        problems.append(
            Message(
                N_(
                    "the audit chain's head says {head} rows, the last row is number {last}: "
                    "rows at its end were deleted"
                ),
                head=head.seq,
                last=expected_seq - 1,
            )
        )
    elif head.hash != previous:
        problems.append(
            Message(
                N_("the audit chain's head does not match its last row (number {last}): it was changed"), last=head.seq
            )
        )
    return ChainReport(rows, previous, problems)


# What the monthly access review counts (개인정보의 안전성 확보조치 기준: access records checked monthly).
PERSONAL_DATA_READS = ("web.view", "person.view", "recipients.view", "visits.view")
PERSONAL_DATA_EXPORTS = ("visits.export",)
ACCOUNT_CHANGES = ("user.add", "user.disable", "user.reset")


@dataclass
class ActorAccess:
    actor: str
    views: int = 0
    exports: int = 0
    subjects: set[str] = field(default_factory=set)


@dataclass
class AccessReview:
    month: str
    access: list[ActorAccess]
    logins: dict[str, int]  # actor -> logins
    failures: dict[tuple[str, str], int]  # (user name typed, from) -> checked passwords that failed
    refused: int  # logins turned away unchecked (over the limit)
    account_changes: list[AuditEvent]
    chain: ChainReport


def access_review(db: Database, month: str, tz: ZoneInfo) -> AccessReview:
    """Who read or exported personal data in `month` (YYYY-MM, local time), logins, failures and account changes."""
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=tz)
    except ValueError:
        raise InputError(N_("--month {month!r}: use YYYY-MM, e.g. 2026-11"), month=month) from None
    following = (first + timedelta(days=32)).replace(day=1)
    access: dict[str, ActorAccess] = {}
    logins: dict[str, int] = {}
    failures: dict[tuple[str, str], int] = {}
    refused, changes = 0, []
    with db.session() as session:
        # By the time the action was for: the real time in service (a drill plays on a copy of the data).
        query = (
            select(AuditEvent)
            .where(col(AuditEvent.at) >= first, col(AuditEvent.at) < following)
            .order_by(col(AuditEvent.id))
        )
        for event in session.exec(query):
            if event.action in PERSONAL_DATA_READS or event.action in PERSONAL_DATA_EXPORTS:
                entry = access.setdefault(event.actor, ActorAccess(event.actor))
                if event.action in PERSONAL_DATA_EXPORTS:
                    entry.exports += 1
                else:
                    entry.views += 1
                entry.subjects.add(event.subject)
            elif event.action == "web.login":
                logins[event.actor] = logins.get(event.actor, 0) + 1
            elif event.action == "web.login_failed":
                key = (event.subject.removeprefix("user "), event.detail.removeprefix("from="))
                failures[key] = failures.get(key, 0) + 1
            elif event.action == "web.login_refused":
                refused += 1
            elif event.action == "web.login_refusals":  # a window's refusals after its first, summed
                refused += max(
                    0,
                    int(dict(part.split("=", 1) for part in event.detail.split() if "=" in part).get("refused", "1"))
                    - 1,
                )
            elif event.action in ACCOUNT_CHANGES:
                changes.append(event)
    return AccessReview(
        month,
        sorted(access.values(), key=lambda a: (-a.views - a.exports, a.actor)),
        logins,
        failures,
        refused,
        changes,
        verify_chain(db),
    )
