"""Tables. Every timestamp is stored as UTC; dates are local calendar dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlmodel import AutoString, Field, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from safecall.domain import (  # noqa: F401  (re-exported: the store's callers name them here too)
    ANSWERED,
    DISPOSITION_KOREAN,
    FINAL_STATES,
    AttemptStatus,
    Channel,
    Disposition,
    MemberState,
    OutboxKind,
    PersonStatus,
    RunState,
    SendStatus,
    TaskKind,
    TaskStatus,
    WebRole,
)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive input is a bug and refused."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else _as_utc(value).replace(tzinfo=None)

    def bind_processor(self, dialect):
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The text SQLite's DATETIME stores ('2026-11-23 00:00:01.000000'), made in one step, not two:
        # every call writes several timestamps.
        def to_sqlite_text(value):
            return None if value is None else _as_utc(value).isoformat(" ", "microseconds")[:-6]

        return to_sqlite_text

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; pass an aware one")
    return value.astimezone(UTC)


def utc_field(**kwargs):
    return Field(sa_type=UTCDateTime, **kwargs)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    person_key: str = Field(index=True, unique=True)
    name: str
    phone: str
    phone2: str | None = None
    address: str = ""
    dong: str = Field(index=True)
    birth_date: date
    team: str = Field(index=True)
    guardian_name: str | None = None
    guardian_phone: str | None = None
    consent_date: date | None = None
    risk: int = 2  # 1 low, 2 medium, 3 high
    voice_style: str = "normal"  # how prompts are spoken to them: normal, slow or loud (roster column 음성)
    call_window: str | None = None  # preferred call time, 'HH:MM-HH:MM' local, inside the campaign's window (schema 7)
    contact: str = (
        "phone"  # phone, or text for people who are deaf or hard of hearing: a one-tap link first (roster 연락 방법)
    )
    status: PersonStatus = Field(default=PersonStatus.ACTIVE, sa_type=AutoString)
    paused_until: date | None = None
    closed_reason: str | None = None
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class CampaignRun(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("campaign", "week_start", "label"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(index=True)
    week_start: date
    label: str = "weekly"  # weekly, or e.g. signals-2026-11-25 for an ad-hoc check of flagged people
    status: RunState = Field(default=RunState.OPEN, sa_type=AutoString)
    launched_at: datetime = utc_field()
    first_call_at: datetime = utc_field()
    closed_at: datetime | None = utc_field(default=None)
    lock_owner: str | None = None
    lock_until: datetime | None = utc_field(default=None)
    # The rules the run dials and settles by (campaign and IVR flow, as JSON): taken at launch, changed only by
    # `safecall campaign apply`, which counts up the version, so an edit of the files applies from the next run.
    rules: str | None = Field(default=None, sa_type=sa.Text)
    rules_version: int = 1


class RunMember(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("run_id", "person_id"),
        sa.Index("ix_member_due", "run_id", "state", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="campaignrun.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    state: MemberState = Field(default=MemberState.PENDING, sa_type=AutoString)
    attempts_made: int = 0
    next_attempt_at: datetime | None = utc_field(default=None)
    final_at: datetime | None = utc_field(default=None)


class Attempt(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("member_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="campaignrun.id", index=True)
    # Only indexes the hot path needs: each one more is a b-tree every call's insert and commit write (schema 3).
    member_id: int = Field(foreign_key="runmember.id")  # the (member_id, number) key serves its lookups
    person_id: int = Field(foreign_key="person.id")  # a person's attempts are found through their run members
    number: int  # 1 is the first call, 2.. are retries
    phone: str
    token: str = Field(unique=True)  # unguessable: only the call placed for it may report
    trunk_call_id: str | None = None  # e.g. Twilio's CallSid; read from its attempt, never looked up
    status: AttemptStatus = Field(default=AttemptStatus.PLACING, sa_type=AutoString)  # written before the call
    worker: str | None = None  # the dialer worker (trunk) that placed it; it alone recovers it
    placed_at: datetime = utc_field()
    answered_at: datetime | None = utc_field(default=None)
    keyed_at: datetime | None = utc_field(default=None)
    ended_at: datetime | None = utc_field(default=None)
    disposition: Disposition | None = Field(default=None, sa_type=AutoString)
    digit: str | None = None  # the key pressed, or "speech" for a spoken answer (speech_text says what)
    # The IVR session (FastAGI or Twilio voice) that began for this call: one per attempt, never a second (schema 4).
    ivr_started_at: datetime | None = utc_field(default=None)
    inbound: bool = False  # a call-back from the person, not a call placed by the dialer
    speech_text: str | None = None  # a spoken answer as recognised, with its confidence (0..1)
    speech_confidence: float | None = None
    risk_speech: bool = False  # the spoken answer had words of suicide or an emergency (schema 9)


class _Stored(Protocol):
    id: int | None


def stored_id(row: _Stored) -> int:
    """The id of a row read from (or flushed to) the store. The column is Optional only for a row not yet
    inserted, so None here is a bug in the caller: it fails loudly, never passes on as a missing id."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never stored")
    return row.id


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model, for statements that skip the ORM."""
    return model.__table__  # type: ignore[attr-defined]  # SQLAlchemy's mapping sets it; SQLModel's types omit it


def changed_rows(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run by Session.execute changed. Its result is a CursorResult, which has the
    count; Session.execute is typed for any statement, so says only Result."""
    return cast("sa.CursorResult[Any]", result).rowcount


def person_attempts(person_id: int) -> SelectOfScalar[Attempt]:
    """SELECT a person's attempts, found through their run members."""
    return (
        select(Attempt).join(RunMember, col(RunMember.id) == Attempt.member_id).where(RunMember.person_id == person_id)
    )


class VisitTask(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("run_id", "person_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    run_id: int = Field(foreign_key="campaignrun.id")
    kind: TaskKind = Field(sa_type=AutoString)
    team: str = Field(index=True)
    created_at: datetime = utc_field()
    created_on: date  # local date the task appeared
    status: TaskStatus = Field(default=TaskStatus.OPEN, sa_type=AutoString)
    weeks_without_ack: int = 1
    answered_without_key: bool = False
    overdue: bool = False  # no outcome recorded in time: top of the list, officer told
    outcome: str | None = None
    note: str | None = None
    recorded_at: datetime | None = utc_field(default=None)  # the time the outcome is for (a drill's --now)
    recorded_by: str | None = None
    recorded_real_at: datetime | None = utc_field(default=None)  # when it was written, from the system clock (schema 5)
    revisit_on: date | None = None  # not home: back on the list from this day, not today's (schema 5)
    moved_from: str | None = None  # the team whose list it was on before a re-import moved the person (schema 10)
    # A spoken answer had words of suicide or an emergency: top of the call-back list, 위험 발언, the duty officer
    # texted at once (schema 9).
    risk_speech: bool = False


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field()  # the time the action was for: a drill's --now moves it
    actor: str  # web:USERNAME, os:NAME(uid N) or safecall (the engine); never read from the environment
    action: str
    subject: str
    detail: str = ""
    real_at: datetime | None = utc_field(
        default=None, index=True
    )  # when it was written, from the system clock (schema 5)
    # The tamper-evident chain (schema 12): row `seq` hashes its own fields with row seq-1's hash (safecall/audit.py).
    seq: int | None = Field(default=None, index=True, unique=True)
    hash: str | None = None


class AuditChain(SQLModel, table=True):
    """The chain's head: one row, locked by every transaction that writes an audit row, so rows chain in one order."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = ""


class WebSession(SQLModel, table=True):
    """A logged-in web session (schema 12). The cookie holds a random token; only its SHA-256 is stored, and logout,
    disable and reset delete the row, which ends the session on the server whatever copy of the cookie exists."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True)
    user_id: int = Field(foreign_key="webuser.id", index=True)
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field()


class LoginCount(SQLModel, table=True):
    """Login attempts in one fixed window, per user name (scope user) or client address (scope addr) (schema 12).

    `checked` counts passwords checked (reserved before the check, so parallel requests cannot pass the limit);
    `refused` counts requests turned away unchecked. Rows of past windows are summed into the audit and deleted."""

    __table_args__ = (sa.UniqueConstraint("scope", "key", "window_start"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str  # user or addr
    key: str  # the typed user name (at most 64 characters) or the address
    window_start: datetime = utc_field(index=True)
    checked: int = 0
    failed: int = 0
    refused: int = 0


class WebUser(SQLModel, table=True):
    """An account of the web app: a visit team member (team), a welfare officer (officer) or an admin."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True)
    password_hash: str  # argon2
    role: WebRole = Field(sa_type=AutoString)
    team: str | None = None  # the one team a team member sees
    disabled: bool = False
    session_version: int = 1  # raised by disable and reset: every cookie issued before stops working
    created_at: datetime = utc_field()


class OutboxMessage(SQLModel, table=True):
    """A message to someone outside (a guardian's text, an officer's alert, a team's daily list, a check-in link, a
    pre-call notice), sent once under `key` and retried until sent, never dropped silently (schema 16: one outbox
    for what were the notification and delivery tables)."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_try_at"),)
    id: int | None = Field(default=None, primary_key=True)
    # e.g. guardian:person:5:week:2026-11-23, officer-overdue:task:9, team-list:2026-11-25:1팀:visit
    key: str = Field(unique=True)
    kind: OutboxKind = Field(sa_type=AutoString)
    channel: Channel = Field(sa_type=AutoString)
    recipient: str = ""  # a team list's address is read from the settings when it is sent
    body: str = ""  # a team list's text is written when it is sent, from its files
    # pending; sent (handed over; an SMS waits for its delivery report); delivered;
    # failed (gave up: shown, still retried)
    status: SendStatus = Field(default=SendStatus.PENDING, sa_type=AutoString)
    attempts: int = 0
    last_error: str | None = None
    next_try_at: datetime | None = utc_field(default=None)  # also the claim of the one sender handing it over
    sent_at: datetime | None = utc_field(default=None)
    # A text may go as 알림톡: which of the campaign's texts it is and its variables (JSON: name, callback).
    template: str | None = None
    variables: str | None = None
    provider_id: str | None = None  # the SMS provider's message id, to read its delivery report
    delivery_status: str | None = None  # the provider's last report, e.g. "4000 발송 처리 완료 (SMS)"
    delivered_at: datetime | None = utc_field(default=None)
    # A team list (kind team_list): the day, the team, which list, and the files written for it.
    day: date | None = None
    team: str | None = None
    list_kind: TaskKind | None = Field(default=None, sa_type=AutoString)
    files: str = ""


class Signal(SQLModel, table=True):
    """A sign of inactivity from outside data (power use, telecom, an app)."""

    __table_args__ = (sa.UniqueConstraint("person_id", "day", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    day: date
    kind: str
    score: float
    imported_at: datetime = utc_field()


class CheckinLink(SQLModel, table=True):
    """A one-tap check-in link for one person's run member: single use, until `expires_at` (schema 14).

    The link carries `nonce`, signed with the web secret; `used_at` is set by the one tap that counts."""

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(unique=True)
    member_id: int = Field(foreign_key="runmember.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(default=None)
    choice: str | None = None  # well or help: what the tap said


class HelpCall(SQLModel, table=True):
    """What came of a call for help (schema 15): the transfer to the duty officer and the message left, one row per
    attempt. The call-back task made for the attempt finds it by run and person; the answer itself is the attempt's."""

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempt.id", unique=True)
    run_id: int = Field(foreign_key="campaignrun.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    transfer: str | None = None  # connected, no_answer, busy or failed (safecall.conversation.TRANSFER_RESULTS)
    transfer_at: datetime | None = utc_field(default=None)  # when the transfer's result was known
    connected_seconds: float | None = None  # how long the officer spoke with the person, where the trunk said
    # The recording: the file Asterisk wrote (its path on the PBX), or "twilio:ACCOUNTSID/RECORDINGSID".
    message_ref: str | None = None
    message_seconds: float | None = None
    message_at: datetime | None = utc_field(default=None)
