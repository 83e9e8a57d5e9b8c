"""Attacks through roster names and guardian texts (issue 28, items 9 and 10): decomposed (NFD) names, invisible
characters, look-ups by a name typed in another form, and a long name in a text that must stay one SMS."""

from __future__ import annotations

import unicodedata

from conftest import person_row, scripted_trunks, write_csv
from sqlmodel import select
from test_sms import ENV, configure

from safecall.campaign import load_campaign
from safecall.escalation import queue_escalations, send_notifications
from safecall.notify import SMS_LIMIT_BYTES, build_sms, euc_kr_bytes, fit_in_one_sms
from safecall.settings import load_instance
from safecall.store import OutboxMessage, Person

NFC = "이영희"
NFD = unicodedata.normalize("NFD", NFC)


def people(cli) -> list[Person]:
    with cli.db().session() as session:
        return list(session.exec(select(Person).order_by(Person.id)))


def test_a_name_saved_decomposed_is_the_same_person(cli, tmp_path):
    assert NFD != NFC and len(NFD) == 7  # 이 and 희 have no final consonant: 2 jamo each, 영 3
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row(NFC, "010-0123-0001")])))
    # The same roster saved on a Mac (NFD), the person's number changed since: an update, not a second person.
    again = cli("recipients", "import", str(write_csv(tmp_path / "b.csv", [person_row(NFD, "010-0123-0009")])))
    assert "0 added, 1 updated" in again.output
    (person,) = people(cli)
    assert person.name == NFC and person.phone == "+821001230009"
    for typed in (NFC, NFD, f" {NFD} "):
        assert "010-0123-0009" in cli("recipients", "show", typed).output


def test_a_name_with_an_invisible_character_is_a_row_error(cli, tmp_path):
    for hidden in ("\u200b", "\u200d", "\ufeff", "\u00ad", "\u3164", "\u2060"):
        name = "이영" + hidden + "희"
        failed = cli(
            "recipients",
            "import",
            str(
                write_csv(
                    tmp_path / "r.csv", [person_row("김순자", "010-0123-0002"), person_row(name, "010-0123-0001")]
                )
            ),
            ok=False,
        )
        assert (
            failed.exit_code == 1
            and f"invisible character U+{ord(hidden):04X}" in failed.output
            and "row 3" in failed.output
        )
    guardian = cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "g.csv",
                [person_row("김순자", "010-0123-0002", guardian="보\u200b호자", guardian_phone="010-0999-0001")],
            )
        ),
        ok=False,
    )
    assert "U+200B" in guardian.output
    assert people(cli) == []  # all or nothing


def test_a_huge_id_is_not_found_not_a_crash(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row(NFC, "010-0123-0001")])))
    missing = cli("recipients", "show", "12345678901234567890", ok=False)
    assert missing.exit_code == 1 and "12345678901234567890" in missing.output and "Traceback" not in missing.output


def test_the_rule_that_shortens_a_long_name_keeps_one_sms():
    template = "[안심콜] {name}님이 안부 전화에 응답하지 않아 담당자가 방문합니다. 문의 {callback}"
    text, name = fit_in_one_sms(template, "홍길동", callback="02-2148-1234")
    assert name == "홍길동" and euc_kr_bytes(text) <= SMS_LIMIT_BYTES
    long_name = "김수한무거북이와두루미삼천갑자동방삭"
    text, name = fit_in_one_sms(template, long_name, callback="02-2148-1234")
    assert (
        euc_kr_bytes(text) <= SMS_LIMIT_BYTES
        and name.endswith("…")
        and long_name.startswith(name[:-1])
        and len(name) >= 3
    )
    assert (
        euc_kr_bytes(template.format(name=name[:-1] + name[-2] + "…", callback="02-2148-1234")) > SMS_LIMIT_BYTES
    )  # as long as fits


def test_a_long_name_never_goes_out_as_lms_when_allow_lms_is_false(cli, solapi, tmp_path):
    configure(cli, solapi)
    cli.edit_campaign("guardian_sms = false", "guardian_sms = true")
    long_name = "김수한무거북이와두루미삼천갑자동방삭"
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"], "+821001230002": ["no_answer"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row(long_name, "010-0123-0001", guardian="보호자", guardian_phone="010-0999-0001"),
                    person_row("이영희", "010-0123-0002", guardian="보호자", guardian_phone="010-0999-0002"),
                ],
            )
        ),
    )
    instance = load_instance(cli.root, ENV)
    campaigns = {"weekly-safe-call": load_campaign(instance, "weekly-safe-call")}
    cli("campaign", "launch", "weekly-safe-call")
    queue_escalations(cli.db(), instance.settings, campaigns, now=cli.clock.now())
    send_notifications(cli.db(), instance.settings, None, build_sms(instance), now=cli.clock.now())
    texts = {m["to"]: m for r in solapi.requests for m in r["messages"]}
    assert {m["type"] for m in texts.values()} == {"SMS"}
    assert all(euc_kr_bytes(m["text"]) <= SMS_LIMIT_BYTES for m in texts.values())
    assert texts["01009990001"]["text"].startswith("[안심콜] 김수한무") and "…님이" in texts["01009990001"]["text"]
    assert "이영희님이" in texts["01009990002"]["text"]  # a usual name is written whole
    with cli.db().session() as session:
        assert len(session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms")).all()) == 2
