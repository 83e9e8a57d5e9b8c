"""One-tap check-ins: a signed, single-use, expiring link that opens a page with "잘 지내요" and "도움이 필요해요".

A link names one run member (a person in one week's run). It carries a random nonce signed with the web secret
(itsdangerous, as the session cookie; its own salt); the nonce's row in `checkinlink` holds its expiry and, once
tapped, when and what. A tap counts through CallLifecycle.record_checkin, in the transaction that marks the link
used, so a link counts once whatever the number of taps, and a reused, expired or forged link records nothing.

The pre-call notice (queue_precall_notices) tells a person on the morning of their first call of the week when
and from which number the district will call: once a week at most, only to people whose consent is on file.

Links go out as texts through the notification queue (escalation.py sends them):
- first, when a run begins, to people the roster marks as deaf or hard of hearing (연락 방법 문자), whose first
  call then waits [checkin] text_first_hours for their tap (the calls stay their safety net);
- after a person's second unanswered call, while retries go on: they stay on the retry path until they tap or the
  retries end, and a visit follows as before if neither happens.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel import col, select

from safecall import phones
from safecall.domain import Channel, Disposition, MemberState, OutboxKind, RunState
from safecall.errors import ConfigError
from safecall.events import log_event
from safecall.lifecycle import CallLifecycle, dialable_clause
from safecall.outbox import is_queued, queue
from safecall.settings import Instance, Settings
from safecall.store import (
    CampaignRun,
    CheckinLink,
    Database,
    Person,
    RunMember,
    audit,
    changed_rows,
    stored_id,
    table_of,
)

CHOICES = {"well": Disposition.ACKNOWLEDGED, "help": Disposition.HELP_REQUESTED}
TEXT_CONTACT = "text"  # Person.contact of people reached by text first (deaf or hard of hearing)
FOLLOW_UP_AFTER = 2  # unanswered calls after which a link goes out
PRECALL_BODY = "[안심콜] {name}님, 오늘 {time}쯤 {caller} 번호로 안부 전화를 드립니다. 받으시면 1번을 눌러 주세요."
LINK_BODY = (
    "[안심콜] {name}님, 안부를 여쭙니다. 아래 주소를 눌러 '잘 지내요' 또는 '도움이 필요해요'를 골라 주세요. {url}"
)


log = logging.getLogger("safecall.checkin")


class TapResult(StrEnum):
    RECORDED = "recorded"
    USED = "used"  # the link counted before: nothing more is recorded
    EXPIRED = "expired"
    FORGED = "forged"  # not signed with this office's secret, or unknown
    ANSWERED = "answered"  # the person answered otherwise this week (or was withdrawn): nothing to record


class LinkSigner:
    def __init__(self, secret: str):
        self._serializer = URLSafeSerializer(secret, salt="safecall-checkin")

    def token(self, nonce: str) -> str:
        return self._serializer.dumps(nonce)

    def nonce(self, token: str) -> str | None:
        try:
            nonce = self._serializer.loads(token)
        except BadSignature:
            return None
        return nonce if isinstance(nonce, str) else None


@dataclass(frozen=True)
class LinkState:
    result: TapResult | None  # None: the link may be tapped
    person_name: str | None = None


def text_number(person: Person) -> str | None:
    """The person's first mobile number (a text to a landline never arrives), or None."""
    return next((number for number in (person.phone, person.phone2) if number and phones.is_mobile(number)), None)


def new_link(
    session, signer: LinkSigner, base_url: str, *, member_id: int, person_id: int, now: datetime, lifetime: timedelta
) -> str:
    """A new link for the member (in the caller's session): the address the person opens."""
    nonce = secrets.token_urlsafe(18)
    session.add(
        CheckinLink(nonce=nonce, member_id=member_id, person_id=person_id, created_at=now, expires_at=now + lifetime)
    )
    return f"{base_url}/c/{signer.token(nonce)}"


def open_member(session, person_id: int) -> RunMember | None:
    """The person's member in their latest open run, if any."""
    return session.exec(
        select(RunMember)
        .join(CampaignRun, col(CampaignRun.id) == RunMember.run_id)
        .where(RunMember.person_id == person_id, CampaignRun.status == RunState.OPEN)
        .order_by(col(CampaignRun.week_start).desc(), col(RunMember.id).desc())
    ).first()


def _link(session, signer: LinkSigner, token: str) -> CheckinLink | None:
    nonce = signer.nonce(token)
    if nonce is None:
        return None
    return session.exec(select(CheckinLink).where(CheckinLink.nonce == nonce)).first()


def link_state(db: Database, signer: LinkSigner, token: str, now: datetime) -> LinkState:
    """What a tap on this link would do, without recording anything (the page a GET shows)."""
    with db.session() as session:
        link = _link(session, signer, token)
        if link is None:
            return LinkState(TapResult.FORGED)
        if link.used_at is not None:
            return LinkState(TapResult.USED)
        if link.expires_at <= now:
            return LinkState(TapResult.EXPIRED)
        return LinkState(None, session.get_one(Person, link.person_id).name)  # the link's person: a foreign key


def tap(
    db: Database, lifecycle: CallLifecycle, signer: LinkSigner, token: str, choice: str, now: datetime
) -> TapResult:
    """Record a tap: the link is marked used and the answer recorded in one transaction, or nothing is written."""
    outcome = CHOICES.get(choice)
    with db.transaction() as session:
        link = _link(session, signer, token)
        if link is None or outcome is None:
            return TapResult.FORGED
        # The guarded update is the claim: of two taps at once, one changes the row and counts.
        claimed = changed_rows(
            session.execute(
                table_of(CheckinLink)
                .update()
                .where(
                    col(CheckinLink.id) == link.id,
                    col(CheckinLink.used_at).is_(None),
                    col(CheckinLink.expires_at) > now,
                )
                .values(used_at=now, choice=choice)
            )
        )
        if not claimed:
            return TapResult.USED if link.used_at is not None else TapResult.EXPIRED
        session.flush()
        connection = session.connection().connection  # the prepared statements' own: one transaction
        if not lifecycle.record_checkin(connection, member_id=link.member_id, outcome=outcome, at=now):
            session.rollback()
            return TapResult.ANSWERED
        audit(
            session,
            at=now,
            action="checkin.tap",
            subject=f"person {link.person_id}",
            detail=f"choice={choice}",
            actor="safecall",
        )
    return TapResult.RECORDED


def link_for_person(
    db: Database, signer: LinkSigner, base_url: str, person_id: int, *, now: datetime, lifetime: timedelta
) -> str | None:
    """A new link for the person's open run (for an officer who sends it by hand); None when no run is open."""
    with db.transaction() as session:
        member = open_member(session, person_id)
        if member is None:
            return None
        url = new_link(
            session, signer, base_url, member_id=stored_id(member), person_id=person_id, now=now, lifetime=lifetime
        )
        audit(session, at=now, action="checkin.link", subject=f"person {person_id}", detail="by hand", actor=None)
    return url


def checkin_key(member_id: int) -> str:
    return f"checkin:member:{member_id}"


def queue_checkin_links(
    db: Database,
    signer: LinkSigner,
    base_url: str,
    *,
    now: datetime,
    lifetime: timedelta,
    lifecycle: CallLifecycle | None = None,
    text_first: timedelta = timedelta(0),
) -> int:
    """Texts with a link, once per run member, for those who owe one now (see the module's text); returns how many.

    `text_first`: how long the first call of a person reached by text first waits for their tap
    (through `lifecycle`)."""
    queued = 0
    with db.transaction() as session:
        due = session.exec(
            select(RunMember, Person)
            .join(Person, col(Person.id) == RunMember.person_id)
            .join(CampaignRun, col(CampaignRun.id) == RunMember.run_id)
            .where(CampaignRun.status == RunState.OPEN, RunMember.state == MemberState.PENDING)
            .where((Person.contact == TEXT_CONTACT) | (RunMember.attempts_made >= FOLLOW_UP_AFTER))
        )
        for member, person in list(due):
            key, mobile = checkin_key(stored_id(member)), text_number(person)
            if mobile is None or is_queued(session, key):
                continue
            url = new_link(
                session,
                signer,
                base_url,
                member_id=stored_id(member),
                person_id=stored_id(person),
                now=now,
                lifetime=lifetime,
            )
            queue(
                session,
                key=key,
                kind=OutboxKind.CHECKIN_LINK,
                channel=Channel.SMS,
                recipient=mobile,
                now=now,
                template="checkin_link",
                body=LINK_BODY.format(name=person.name, url=url),
                variables=json.dumps({"name": person.name, "link": url}, ensure_ascii=False),
            )
            if lifecycle is not None and text_first and person.contact == TEXT_CONTACT and member.attempts_made == 0:
                lifecycle.hold_first_call(
                    session.connection().connection,
                    member_id=stored_id(member),
                    run_id=member.run_id,
                    until=now + text_first,
                )
            queued += 1
    return queued


def precall_key(person_id: int, week) -> str:
    """One notice per person and week, however many runs (weekly, signal checks) call them that week."""
    return f"precall:person:{person_id}:week:{week.isoformat()}"


def queue_precall_notices(db: Database, settings: Settings, tz: ZoneInfo, *, now: datetime) -> int:
    """From the morning hour on, a notice to each consenting person whose first call of the week is later today."""
    local = now.astimezone(tz)
    if local.hour < settings.checkin.precall_hour:
        return 0
    caller = settings.checkin.caller_number or settings.sms.callback_number
    if not caller:
        log_event(log, "precall_notice_no_number", level=logging.WARNING)
        return 0
    caller = phones.national(phones.normalise(caller))
    day_end = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
    queued = 0
    with db.transaction() as session:
        due = session.exec(
            select(RunMember, Person, CampaignRun)
            .join(Person, col(Person.id) == RunMember.person_id)
            .join(CampaignRun, col(CampaignRun.id) == RunMember.run_id)
            .where(
                CampaignRun.status == RunState.OPEN,
                RunMember.state == MemberState.PENDING,
                RunMember.attempts_made == 0,
                col(RunMember.next_attempt_at) > now,
                col(RunMember.next_attempt_at) < day_end,
                *dialable_clause(local.date()),
            )
            .order_by(col(RunMember.id))
        )
        for member, person, run in list(due):
            key, mobile = precall_key(stored_id(person), run.week_start), text_number(person)
            if mobile is None or is_queued(session, key):
                continue
            assert member.next_attempt_at is not None  # the query chose members due later today
            at = f"{member.next_attempt_at.astimezone(tz):%H:%M}"
            queue(
                session,
                key=key,
                kind=OutboxKind.PRECALL_NOTICE,
                channel=Channel.SMS,
                recipient=mobile,
                now=now,
                template="precall_notice",
                body=PRECALL_BODY.format(name=person.name, time=at, caller=caller),
                variables=json.dumps({"name": person.name, "time": at, "caller": caller}, ensure_ascii=False),
            )
            queued += 1
    return queued


def queue_due(db: Database, instance: Instance, *, now: datetime, lifecycle: CallLifecycle | None = None) -> None:
    """What the scheduler's tick sends of this module, each part only when the office turned it on. Links first:
    a first call they hold is then the time the pre-call notice gives."""
    settings = instance.settings
    if settings.checkin.links:
        try:
            secret = settings.web.secret_key.resolve(instance.environ)
        except ConfigError as exc:  # said every tick until fixed; the calls and visits go on without links
            log_event(log, "checkin_links_no_secret", level=logging.ERROR, error=str(exc))
            secret = None
        if secret:
            queue_checkin_links(
                db,
                LinkSigner(secret),
                settings.web.base_url,
                now=now,
                lifetime=timedelta(hours=settings.checkin.link_hours),
                lifecycle=lifecycle,
                text_first=timedelta(hours=settings.checkin.text_first_hours),
            )
    if settings.checkin.precall_notice:
        queue_precall_notices(db, settings, instance.tz, now=now)
