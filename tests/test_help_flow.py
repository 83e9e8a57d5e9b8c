"""The flow's [help] settings (issue 30, item 1): validated with errors naming the key; office hours by the clock and
Korean public holidays."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from safecall.errors import ConfigError
from safecall.ivr import load_flow

SEOUL = ZoneInfo("Asia/Seoul")


def flow_with(cli, old: str, new: str):
    path = cli.root / "ivr" / "safe-call.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_flow(cli.root / "ivr", "safe-call")


@pytest.mark.parametrize(
    "old, new, key, why",
    [
        ('transfer_number = ""', 'transfer_number = "02-12"', "help.transfer_number", "is not a telephone number"),
        (
            'office_hours = "09:00-18:00"',
            'office_hours = "18:00-09:00"',
            "help.office_hours",
            "the start is not before the end",
        ),
        ('office_hours = "09:00-18:00"', 'office_hours = "9시부터"', "help.office_hours", "is not office hours"),
        ('office_days = ["mon", "tue", "wed", "thu", "fri"]', 'office_days = ["월"]', "help.office_days.0", ""),
        ('holidays = "KR"', 'holidays = "XX"', "help.holidays", "is not a country"),
        ('timezone = "Asia/Seoul"', 'timezone = "Seoul"', "help.timezone", "is not a time zone"),
        ("ring_seconds = 20", "ring_seconds = 600", "help.ring_seconds", ""),
        ("message_seconds = 60", "message_seconds = 0", "help.message_seconds", ""),
        ("message_seconds = 60", "message_seconds = 60\nmesage_seconds = 30", "help.mesage_seconds", ""),
    ],
)
def test_a_wrong_help_setting_is_refused_naming_its_key(cli, old, new, key, why):
    with pytest.raises(ConfigError) as error:
        flow_with(cli, old, new)
    text = str(error.value)
    assert "safe-call.toml" in text and f"key '{key}'" in text and why in text, text


def test_turned_on_help_needs_its_prompts(cli):
    path = cli.root / "ivr" / "safe-call.toml"
    text = path.read_text(encoding="utf-8").replace("enabled = false", "enabled = true")
    path.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("help_no_officer")), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="prompts.help_no_officer: missing or empty"):
        load_flow(cli.root / "ivr", "safe-call")
    # Turned off, the section is kept but asks for nothing: key 2 is thanked as before.
    path.write_text(path.read_text(encoding="utf-8").replace("enabled = true", "enabled = false"), encoding="utf-8")
    assert load_flow(cli.root / "ivr", "safe-call").help_line is None


def test_office_hours_follow_the_given_moment_weekdays_and_korean_holidays(cli):
    flow = flow_with(cli, "enabled = false", "enabled = true")
    assert flow.help.transfer_number == "" and flow.help_line is not None
    open_at = [datetime(2026, 12, 8, 9, 0, tzinfo=SEOUL), datetime(2026, 12, 8, 17, 59, tzinfo=SEOUL)]
    closed_at = [
        datetime(2026, 12, 8, 8, 59, tzinfo=SEOUL),
        datetime(2026, 12, 8, 18, 0, tzinfo=SEOUL),
        datetime(2026, 12, 12, 10, 0, tzinfo=SEOUL),  # a Saturday
        datetime(2026, 12, 25, 10, 0, tzinfo=SEOUL),  # 성탄절, a Friday
        datetime(2026, 9, 25, 10, 0, tzinfo=SEOUL),
    ]  # 추석, a Friday
    assert [flow.office_open(at) for at in open_at] == [True, True]
    assert [flow.office_open(at) for at in closed_at] == [False] * 5
    # Stored in UTC, read in Seoul: 01:00 UTC is 10:00 in Seoul.
    assert flow.office_open(datetime(2026, 12, 8, 1, 0, tzinfo=ZoneInfo("UTC")))
    flow = flow_with(cli, 'transfer_number = ""', 'transfer_number = "02-2148-0001"')
    assert flow.help.transfer_number == "+82221480001"


def test_ivr_try_shows_the_step_after_help(cli):
    flow_with(cli, "enabled = false", "enabled = true")
    output = cli("ivr", "try", "safe-call", "--said", "도와주세요").output
    assert "then prompt-help_message" in output  # ivr try has no office hours: the message step


def test_the_simulated_switch_puts_help_through_and_nobody_answers_there(cli, tmp_path):
    """The simulated trunk renders the same steps: its switch has no duty officer (the phone rings out) and records
    no voice; the help is stored and the call-back task made all the same."""
    from conftest import person_row, scripted_trunks, write_csv
    from sqlmodel import select

    from safecall.store import Attempt, HelpCall, VisitTask

    flow_with(cli, "enabled = false", "enabled = true")
    flow_with(cli, 'transfer_number = ""', 'transfer_number = "02-2148-0001"')
    cli.set_trunks(scripted_trunks({"+821001230004": ["help"], "+821001230001": ["ack"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv", [person_row("최도움", "010-0123-0004"), person_row("김응답", "010-0123-0001")]
            )
        ),
    )
    assert cli.clock.now().astimezone(SEOUL).weekday() == 0  # a Monday: office hours when the calls are made
    cli("campaign", "launch", "weekly-safe-call")
    with cli.db().session() as session:
        helped = session.exec(select(HelpCall)).all()
        attempt = session.exec(select(Attempt).where(Attempt.digit == "2")).one()
        task = session.exec(select(VisitTask).where(VisitTask.person_id == attempt.person_id)).one()
    assert [(h.attempt_id, h.transfer, h.message_ref) for h in helped] == [(attempt.id, "no_answer", None)]
    assert attempt.disposition == "help_requested" and task.kind == "callback"
    assert helped[0].transfer_at > attempt.keyed_at  # stored first, then put through


def test_reports_on_one_call_for_help_at_once_make_one_row_with_both(cli, tmp_path):
    """Twilio's <Record> action and its recording's status callback may come together: one row, never an error."""
    import threading

    from conftest import person_row, scripted_trunks, write_csv
    from sqlmodel import select

    from safecall import helpline
    from safecall.store import Attempt, HelpCall

    cli.set_trunks(scripted_trunks({"+821001230004": ["help"]}))
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("최도움", "010-0123-0004")])))
    cli("campaign", "launch", "weekly-safe-call")
    db = cli.db()
    with db.session() as session:
        token = session.exec(select(Attempt.token).where(Attempt.digit == "2")).one()
    at = cli.clock.now()
    ref = "twilio:AC" + "0" * 32 + "/RE" + "1" * 32
    start, results = threading.Barrier(4), []

    def report(write):
        start.wait()
        results.append(write())

    writers = [
        lambda: helpline.record_message(db, token, ref, 4, at),
        lambda: helpline.record_message(db, token, ref, 4, at),
        lambda: helpline.record_transfer(db, token, "busy", at),
        lambda: helpline.record_transfer(db, token, "busy", at),
    ]
    threads = [threading.Thread(target=report, args=(w,)) for w in writers]
    [t.start() for t in threads], [t.join(30) for t in threads]
    assert results == [True] * 4
    with db.session() as session:
        rows = session.exec(select(HelpCall)).all()
    assert [(r.transfer, r.message_ref, r.message_seconds) for r in rows] == [("busy", ref, 4.0)]
    assert not helpline.record_transfer(db, "no-such-token", "busy", at) and not helpline.record_transfer(
        db, token, "odd", at
    )
