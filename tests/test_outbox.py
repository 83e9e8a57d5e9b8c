"""The one outbox's retry loop: a message is claimed before it is handed over, so no second sender hands it over
while the first may still be at it, and a crash mid-send loses nothing: the claim runs out and it goes again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import select

from safecall.domain import Channel, OutboxKind, SendStatus
from safecall.notify import DeliveryError
from safecall.outbox import CLAIM_LEASE, HandedOver, queue, send_due
from safecall.store import Database, OutboxMessage

NOW = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
POLICY = SimpleNamespace(retry_minutes=5, max_attempts=2)
ALL = list(OutboxKind)


class Crash(BaseException):
    """The process dies in the middle of a hand-over (not a DeliveryError: nothing catches it)."""


@pytest.fixture
def db(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    database.create_schema()
    with database.transaction() as session:
        queue(
            session,
            key="guardian:person:1:week:2026-11-23",
            kind=OutboxKind.GUARDIAN_TEXT,
            channel=Channel.SMS,
            recipient="+821012345678",
            body="안부",
            now=NOW,
        )
        queue(
            session,
            key="team-list:2026-11-25:1팀:visit",
            kind=OutboxKind.TEAM_LIST,
            channel=Channel.EMAIL,
            now=NOW,
            recipient="",
            body="",
            team="1팀",
            list_kind="visit",
            day=NOW.date(),
        )
    yield database
    database.dispose()


def stored(db: Database) -> dict[str, OutboxMessage]:
    with db.session() as session:
        return {m.key: m for m in session.exec(select(OutboxMessage))}


def test_a_message_queued_twice_under_one_key_is_one_message(db):
    with db.transaction() as session:
        assert not queue(
            session,
            key="guardian:person:1:week:2026-11-23",
            kind=OutboxKind.GUARDIAN_TEXT,
            channel=Channel.SMS,
            recipient="+821012345678",
            body="again",
            now=NOW,
        )
    assert stored(db)["guardian:person:1:week:2026-11-23"].body == "안부"


def test_a_second_sender_does_not_hand_over_what_the_first_has_claimed(db):
    handed = []

    def hand_over(message):
        handed.append(message.key)
        if len(handed) == 1:  # meanwhile another process runs the same loop
            assert send_due(db, POLICY, hand_over, now=NOW, kinds=ALL) and handed[1] != message.key
        return HandedOver()

    send_due(db, POLICY, hand_over, now=NOW, kinds=ALL)
    assert sorted(handed) == sorted(stored(db)) and len(handed) == 2  # each once
    assert {m.status for m in stored(db).values()} == {SendStatus.SENT}


def test_a_crash_mid_send_never_sends_twice_while_it_may_be_under_way_and_never_loses_the_message(db):
    def crashing(message):
        raise Crash

    with pytest.raises(Crash):
        send_due(db, POLICY, crashing, now=NOW, kinds=[OutboxKind.GUARDIAN_TEXT])
    handed = []

    def hand_over(message):
        handed.append(message.key)
        return HandedOver(provider_id="M-1")

    # The restarted process leaves it alone while the claim holds ...
    assert (
        send_due(db, POLICY, hand_over, now=NOW + CLAIM_LEASE - timedelta(seconds=1), kinds=[OutboxKind.GUARDIAN_TEXT])
        == []
    )
    text = stored(db)["guardian:person:1:week:2026-11-23"]
    assert (text.status, text.attempts) == (SendStatus.PENDING, 0)
    # ... and sends it once the claim has run out.
    send_due(db, POLICY, hand_over, now=NOW + CLAIM_LEASE, kinds=[OutboxKind.GUARDIAN_TEXT])
    text = stored(db)["guardian:person:1:week:2026-11-23"]
    assert handed == ["guardian:person:1:week:2026-11-23"]
    assert (text.status, text.attempts, text.provider_id) == (SendStatus.SENT, 1, "M-1")


def test_every_kind_backs_off_gives_up_as_failed_and_is_still_retried(db):
    def refusing(message):
        raise DeliveryError("SMTP 127.0.0.1:1: refused for 010-1234-5678")

    send_due(db, POLICY, refusing, now=NOW, kinds=ALL)
    for message in stored(db).values():
        assert (message.status, message.attempts) == (SendStatus.PENDING, 1)
        assert message.next_try_at == NOW + timedelta(minutes=5)
        assert "5678" in message.last_error and "1234-5678" not in message.last_error  # masked
    assert send_due(db, POLICY, refusing, now=NOW + timedelta(minutes=4), kinds=ALL) == []  # backing off
    send_due(db, POLICY, refusing, now=NOW + timedelta(minutes=5), kinds=ALL)
    for message in stored(db).values():
        assert (message.status, message.attempts) == (SendStatus.FAILED, 2)
        assert message.next_try_at == NOW + timedelta(minutes=15)  # doubled
    send_due(db, POLICY, lambda message: HandedOver(), now=NOW + timedelta(minutes=15), kinds=ALL)
    after = stored(db)
    assert {m.status for m in after.values()} == {SendStatus.SENT}
    # A team list is shown sent with no error; a text keeps why it had to be sent again.
    assert after["team-list:2026-11-25:1팀:visit"].last_error is None
    assert "5678" in after["guardian:person:1:week:2026-11-23"].last_error


def test_a_sender_hands_over_only_its_own_kinds(db):
    handed = []
    send_due(db, POLICY, lambda m: handed.append(m.key) or HandedOver(), now=NOW, kinds=[OutboxKind.TEAM_LIST])
    assert handed == ["team-list:2026-11-25:1팀:visit"]
    assert stored(db)["guardian:person:1:week:2026-11-23"].status == SendStatus.PENDING
