"""Words of suicide or an emergency in a spoken answer: the call-back task goes to the top of the officer's list,
marked 위험 발언, and the duty officer is texted (over the SOLAPI fake)."""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import person_row, write_csv
from live import always_open
from solapi_fake import API_KEY, API_SECRET, sms_table
from sqlmodel import select
from test_twilio import ENV as TWILIO_ENV
from test_twilio_faults import open_calls

from safecall.clock import SystemClock
from safecall.escalation import queue_escalations, send_notifications
from safecall.notify import build_sms
from safecall.settings import load_instance
from safecall.speech import judge
from safecall.store import OutboxMessage, VisitTask
from safecall.telephony.base import CallEvent, LineResult

ENV = {**TWILIO_ENV, "SOLAPI_KEY": API_KEY, "SOLAPI_SECRET": API_SECRET}
DUTY_OFFICER = "010-9999-0001"


def answer_and_hang_up(services, token: str, text: str, at) -> None:
    """What a trunk does with a spoken answer: judge it, record it with its risk, then the call ends."""
    verdict = judge(services.campaign_rules("weekly-safe-call").flow.speech, text, 0.9)
    assert services.lifecycle.record_keypress(
        token, "speech", verdict.outcome, at, speech=(text, 0.9), risk=verdict.risk
    )
    services.lifecycle.apply([CallEvent(token, "ended", at + timedelta(seconds=20), LineResult.ANSWERED)])


def test_a_risk_answer_tops_the_call_back_list_marked_and_texts_the_duty_officer(cli, tmp_path, solapi):
    always_open(cli)
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + sms_table(solapi.base_url) + f'duty_officer = "{DUTY_OFFICER}"\n',
        encoding="utf-8",
    )
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("가나다", "010-0123-0001"),
                    person_row("라마바", "010-0123-0002"),
                    person_row("사아자", "010-0123-0003"),
                ],
            )
        ),
    )
    services, calls = open_calls(cli, 3)
    now = SystemClock().now()
    # The first asks for help plainly, earlier; the second speaks of dying; the third is well.
    answer_and_hang_up(services, calls[0][0], "허리가 아파요", now)
    answer_and_hang_up(services, calls[1][0], "네 괜찮은데 죽고 싶어요", now + timedelta(minutes=5))
    answer_and_hang_up(services, calls[2][0], "네 잘 지내요", now + timedelta(minutes=6))
    with services.db.session() as session:
        tasks = session.exec(select(VisitTask).order_by(VisitTask.id)).all()
    assert [(t.kind, t.risk_speech) for t in tasks] == [("callback", False), ("callback", True)]

    day = now.astimezone(services.instance.tz).date().isoformat()
    listed = json.loads(cli("visits", "list", "--kind", "callback", "--date", day, "--format", "json").output)
    rows = [row for team in listed.values() for row in team]
    assert [(r["name"], r["risk_speech"], r["rank"]) for r in rows] == [("라마바", "위험 발언", 1), ("가나다", "", 2)]
    table = cli("visits", "list", "--kind", "callback", "--date", day).output
    assert "라마바 (위험 발언)" in table and table.index("라마바") < table.index("가나다")

    instance = load_instance(cli.root, ENV)
    later = now + timedelta(minutes=7)
    queue_escalations(services.db, instance.settings, {}, now=later)
    send_notifications(services.db, instance.settings, None, build_sms(instance), now=later)
    [sent] = [m for request in solapi.requests for m in request["messages"]]
    assert sent["to"] == "01099990001" and sent["type"] in ("SMS", "LMS")
    assert sent["text"].startswith("[안심콜] 위험 발언: 과제 ") and f"과제 {tasks[1].id} " in sent["text"]
    assert "라마바" not in sent["text"] and "0123" not in sent["text"]  # no name or number in a text
    with services.db.session() as session:
        keys = sorted(n.key for n in session.exec(select(OutboxMessage)))
    assert [k for k in keys if k.startswith("duty-officer")] == [f"duty-officer-risk:task:{tasks[1].id}"]
    queue_escalations(services.db, instance.settings, {}, now=later + timedelta(minutes=1))  # once, however many ticks
    send_notifications(services.db, instance.settings, None, build_sms(instance), now=later + timedelta(minutes=1))
    assert len([m for request in solapi.requests for m in request["messages"]]) == 1
    services.close()


def test_risk_words_after_an_earlier_call_for_help_mark_the_task_already_there(cli, tmp_path):
    always_open(cli)
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("가나다", "010-0123-0001")])))
    services, [(token, _)] = open_calls(cli, 1)
    now = SystemClock().now()
    answer_and_hang_up(services, token, "도와주세요", now)
    with services.db.session() as session:
        assert not session.exec(select(VisitTask)).one().risk_speech
    # Later the same run, a call-back from the person where the words are said: the open task is marked.
    with services.db.transaction() as session:
        from safecall.store import Attempt

        first = session.exec(select(Attempt)).one()
        session.add(
            Attempt(
                run_id=first.run_id,
                member_id=first.member_id,
                person_id=first.person_id,
                number=2,
                phone=first.phone,
                token="again-" + "x" * 20,
                placed_at=now,
                ivr_started_at=now,
                inbound=True,
            )
        )
    answer_and_hang_up(services, "again-" + "x" * 20, "살려주세요", now + timedelta(minutes=30))
    with services.db.session() as session:
        [task] = session.exec(select(VisitTask)).all()
    assert task.risk_speech
    services.close()
