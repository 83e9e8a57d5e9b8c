"""The outbox: every message to someone outside (guardians' texts, officers' alerts, teams' daily lists, check-in
links, pre-call notices) is one OutboxMessage, queued once under its key, and handed over by the one retry loop here.

A sender (texts and e-mails in escalation.py, team lists in delivery.py) says only how a message is handed over;
this loop owns the rest: what is due, the claim, attempts, back-off, giving up, and marking it sent.

A message is claimed before it is handed over: its next try moves a lease ahead, committed, so two processes (the
scheduler and `visits deliver`) never hand over the same message at once. A crash after the claim and before the
result is written lets the lease run out, and the message is sent again then: never lost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from safecall import phones
from safecall.domain import Channel, OutboxKind, SendStatus
from safecall.events import log_event
from safecall.notify import DeliveryError, SmsSender
from safecall.store import Database, OutboxMessage, changed_rows, stored_id

log = logging.getLogger("safecall.outbox")

CLAIM_LEASE = timedelta(minutes=10)  # longer than any one hand-over (SMTP and HTTP time out well before)
RETRIED = (SendStatus.PENDING, SendStatus.FAILED)  # failed is still retried: shown, never dropped
REPORT_FIRST_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class HandedOver:
    provider_id: str | None = None  # the SMS provider's message id, to read its delivery report by
    logged: dict = field(default_factory=dict)  # what the sent event says besides the message's own fields


HandOver = Callable[[OutboxMessage], HandedOver]  # raises DeliveryError when the message could not be handed over


def is_queued(session, key: str) -> bool:
    return session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None


def queue(
    session, *, key: str, kind: OutboxKind, channel: Channel, recipient: str, body: str, now: datetime, **extra
) -> bool:
    """Queue a message under `key` unless one is queued under it already; True when it is queued now."""
    if is_queued(session, key):
        return False
    session.add(
        OutboxMessage(key=key, kind=kind, channel=channel, recipient=recipient, body=body, next_try_at=now, **extra)
    )
    return True


def retry_delay(policy, attempts: int) -> timedelta:
    """retry_minutes, doubling after each failure, at most an hour apart."""
    return timedelta(minutes=min(60, policy.retry_minutes * 2 ** (attempts - 1)))


def send_due(
    db: Database, policy, hand_over: HandOver, *, now: datetime, kinds: Iterable[OutboxKind]
) -> list[OutboxMessage]:
    """Hand over every message of `kinds` that is due, each claimed first; returns those tried. `policy` is the
    [delivery] settings: retry_minutes and max_attempts."""
    with db.unit(read_only=True) as unit:
        due = unit.outbox.due(kinds, RETRIED, now)
    tried = []
    for message in due:
        if not _claim(db, stored_id(message), now):
            continue  # another process has it
        try:
            handed = hand_over(message)
        except DeliveryError as exc:
            message.attempts += 1
            retry_later(message, str(exc), policy, now)
        else:
            message.attempts += 1
            message.status, message.sent_at = SendStatus.SENT, now
            if message.kind == OutboxKind.TEAM_LIST:  # shown as sent with no error; a text keeps why it was sent again
                message.last_error = None
            message.provider_id, message.delivery_status = handed.provider_id, None
            if handed.provider_id:
                message.next_try_at = now + REPORT_FIRST_AFTER  # when its delivery report is first read
            log_event(log, f"{_event(message)}_sent", **_said(message), **handed.logged, provider_id=handed.provider_id)
        with db.transaction() as session:
            session.add(message)
        tried.append(message)
    return tried


def _claim(db: Database, message_id: int, now: datetime) -> bool:
    with db.transaction() as session:
        claimed = changed_rows(
            session.execute(
                sa.update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == message_id,
                    col(OutboxMessage.status).in_(RETRIED),
                    col(OutboxMessage.next_try_at) <= now,
                )
                .values(next_try_at=now + CLAIM_LEASE)
            )
        )
    return claimed == 1


def follow_reports(db: Database, policy, sms: SmsSender, *, now: datetime) -> None:
    """Read the provider's report on each text sent that is due for one: an undelivered text is sent again."""
    with db.unit(read_only=True) as unit:
        awaiting = unit.outbox.awaiting_reports(now)
    for message in awaiting:
        _read_report(message, sms, policy, now)
        with db.transaction() as session:
            session.add(message)


def _read_report(message: OutboxMessage, sms: SmsSender, policy, now: datetime) -> None:
    """Delivered, still on its way (asked again later), or failed (sent again)."""
    assert message.sent_at is not None and message.provider_id is not None  # follow_reports chose it: sent, with an id
    # Asked again after half the time it has been on its way: often at first, hourly at most.
    ask_again = now + min(timedelta(hours=1), max(REPORT_FIRST_AFTER, (now - message.sent_at) / 2))
    try:
        report = sms.report(message.provider_id)
    except DeliveryError as exc:
        message.next_try_at = ask_again  # the text itself may well have arrived: ask, do not resend
        log_event(
            log, "notification_report_unread", level=logging.WARNING, key=message.key, error=phones.mask_text(str(exc))
        )
        return
    message.delivery_status = report.status
    if not report.done:
        message.next_try_at = ask_again
    elif report.delivered:
        message.status, message.delivered_at = SendStatus.DELIVERED, now
        log_event(
            log, "notification_delivered", key=message.key, recipient=masked_recipient(message), status=report.status
        )
    else:
        retry_later(message, f"not delivered: {report.status}", policy, now)


def retry_later(message: OutboxMessage, error: str, policy, now: datetime) -> None:
    """Back off; past max_attempts it is reported as failed, and still retried (hourly at most)."""
    message.last_error = phones.mask_text(error)  # stored and shown: no guardian's whole number
    failed = message.attempts >= policy.max_attempts
    message.status = SendStatus.FAILED if failed else SendStatus.PENDING
    message.next_try_at = now + retry_delay(policy, message.attempts)
    log_event(
        log,
        f"{_event(message)}_{'failed' if failed else 'retry'}",
        level=logging.ERROR if failed else logging.WARNING,
        **_said(message),
        attempts=message.attempts,
        error=message.last_error,
    )


def _event(message: OutboxMessage) -> str:
    return "delivery" if message.kind == OutboxKind.TEAM_LIST else "notification"


def _said(message: OutboxMessage) -> dict:
    """What the log says a message is: a team list by its day, team and list; any other by its key and recipient."""
    if message.kind == OutboxKind.TEAM_LIST:
        return {
            "day": message.day.isoformat() if message.day else None,
            "team": message.team,
            "kind": message.list_kind,
        }
    return {"key": message.key, "recipient": masked_recipient(message)}


def masked_recipient(message: OutboxMessage) -> str:
    return phones.mask(message.recipient) if message.channel == Channel.SMS else message.recipient
