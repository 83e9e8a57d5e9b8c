"""One-tap check-ins and the pre-call notice (issue 30, items 2 and 3), over HTTP and in the library."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import HEADER, SEOUL, person_row, write_csv
from sqlmodel import select
from starlette.testclient import TestClient
from test_web_http import log_in
from web_fixtures import PASSWORD, SECRET, make_app, web_services, web_settings

from safecall.checkin import LinkSigner, TapResult, link_for_person, queue_due, tap
from safecall.domain import Disposition, MemberState
from safecall.reports import weekly_report
from safecall.settings import load_instance
from safecall.store import Attempt, AuditEvent, CheckinLink, OutboxMessage, Person, RunMember, VisitTask
from safecall.telephony.base import CallEvent, LineResult

ENV = {"SAFECALL_WEB_SECRET": SECRET}


@pytest.fixture
def office(cli, tmp_path):
    """This week's run launched, nobody called yet: 김순자 hears, 이청각 is deaf (연락 방법 문자)."""
    cli.environ.update(ENV)
    web_settings(
        cli, '\n[checkin]\nlinks = true\ntext_first_hours = 4\nprecall_notice = true\ncaller_number = "02-2148-1234"\n'
    )
    rows = [person_row("김순자", "010-0123-0001") + ["전화"], person_row("이청각", "010-0123-0002") + ["문자"]]
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows, header=HEADER + ["연락 방법"])))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    return cli


def member_of(cli, name: str) -> RunMember:
    with cli.db().session() as session:
        return session.exec(
            select(RunMember).join(Person, Person.id == RunMember.person_id).where(Person.name == name)
        ).one()


def link_of(cli, name: str) -> str:
    """The link `safecall checkin link` prints: the path part, to open on the test's server."""
    url = cli("checkin", "link", name).output.strip()
    assert url.startswith("https://safecall.example.org/c/")
    return url.removeprefix("https://safecall.example.org")


def attempts_of(cli, member_id: int) -> list[Attempt]:
    with cli.db().session() as session:
        return list(session.exec(select(Attempt).where(Attempt.member_id == member_id).order_by(Attempt.number)))


def client(cli) -> TestClient:
    return TestClient(make_app(cli), base_url="http://127.0.0.1", follow_redirects=False)


def test_the_roster_column_marks_who_is_reached_by_text_first_and_refuses_an_unknown_word(cli, tmp_path):
    rows = [person_row("김순자", "010-0123-0001") + ["청각장애"], person_row("박보통", "010-0123-0003") + [""]]
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows, header=HEADER + ["연락 방법"])))
    with cli.db().session() as session:
        assert {p.name: p.contact for p in session.exec(select(Person))} == {"김순자": "text", "박보통": "phone"}
    bad = cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "bad.csv", [person_row("최", "010-0123-0004") + ["팩스"]], header=HEADER + ["연락 방법"]
            )
        ),
        ok=False,
    )
    assert bad.exit_code != 0 and "row 2" in bad.output and "연락 방법" in bad.output and "팩스" in bad.output


@pytest.mark.both_databases
def test_a_tap_on_well_acknowledges_the_week_and_is_marked_apart_in_the_report(office):
    path = link_of(office, "김순자")
    http = client(office)
    page = http.get(path)
    assert page.status_code == 200 and "김순자님, 잘 지내세요?" in page.text and "잘 지내요" in page.text
    member = member_of(office, "김순자")
    assert (
        member.state == MemberState.PENDING and attempts_of(office, member.id) == []
    )  # a GET (a preview) records nothing

    done = http.post(path, data={"choice": "well"})
    assert done.status_code == 200 and "잘 지내신다고 전해 드렸습니다" in done.text
    member = member_of(office, "김순자")
    assert member.state == MemberState.ACKNOWLEDGED
    [attempt] = attempts_of(office, member.id)
    assert (attempt.digit, attempt.disposition, attempt.status, attempt.inbound) == (
        "tap",
        Disposition.ACKNOWLEDGED,
        "done",
        False,
    )
    [row] = [r for r in weekly_report(office.db()) if r.called]
    assert (row.ack_first + row.ack_retry, row.ack_checkin, row.ack_callback) == (1, 1, 0)
    # The person's history says it was a tap, not a call; so does the officer's weekly report page.
    assert "one-tap" in office("recipients", "show", "김순자").output
    office.runner.invoke(
        office.app,
        ["--config", str(office.root), "users", "add", "officer", "--role", "officer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert log_in(http, "officer").status_code == 303
    report = http.get("/report").text
    assert (
        "그중 문자 링크 응답" in report and '<td class="checkin-acks" data-label="그중 문자 링크 응답">1</td>' in report
    )


def test_a_tap_on_help_makes_a_call_back_task_like_key_2(office):
    path = link_of(office, "김순자")
    done = client(office).post(path, data={"choice": "help"})
    assert done.status_code == 200 and "담당 공무원이 오늘 중으로 연락드립니다" in done.text
    assert member_of(office, "김순자").state == MemberState.HELP_REQUESTED
    with office.db().session() as session:
        [task] = session.exec(select(VisitTask))
        assert task.kind == "callback"
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "checkin.tap")).one().detail == "choice=help"
    # The officer's call-back page says the answer came by the link, not by a call.
    office.runner.invoke(
        office.app,
        ["--config", str(office.root), "users", "add", "officer", "--role", "officer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    http = client(office)
    assert log_in(http, "officer").status_code == 303
    page = http.get(f"/task/{task.id}")
    assert page.status_code == 200 and "도움 요청(2번) (문자 링크)" in page.text


@pytest.mark.both_databases
def test_a_reused_link_records_nothing_more(office):
    path = link_of(office, "김순자")
    http = client(office)
    assert http.post(path, data={"choice": "well"}).status_code == 200
    again = http.post(path, data={"choice": "help"})
    assert again.status_code == 409 and "한 번만" in again.text
    assert http.get(path).status_code == 409
    member = member_of(office, "김순자")
    assert member.state == MemberState.ACKNOWLEDGED and len(attempts_of(office, member.id)) == 1
    with office.db().session() as session:
        assert session.exec(select(VisitTask)).all() == []


def test_an_expired_link_records_nothing(office):
    path = link_of(office, "김순자")
    office.clock.advance(timedelta(hours=48, seconds=1))  # [checkin] link_hours, by default 48
    http = client(office)
    assert http.get(path).status_code == 410
    refused = http.post(path, data={"choice": "well"})
    assert refused.status_code == 410 and "기한이 지난" in refused.text
    member = member_of(office, "김순자")
    assert member.state == MemberState.PENDING and attempts_of(office, member.id) == []


def test_a_forged_or_altered_link_records_nothing(office):
    path = link_of(office, "김순자")
    nonce_token = path.removeprefix("/c/")
    with office.db().session() as session:
        nonce = session.exec(select(CheckinLink.nonce)).one()
    forged = {
        "another office's secret": LinkSigner("another-secret-that-is-long-enough-000000").token(nonce),
        "a changed signature": nonce_token[:-2] + ("AA" if not nonce_token.endswith("AA") else "BB"),
        "a nonce never issued": LinkSigner(SECRET).token("made-up-nonce"),
    }
    http = client(office)
    for why, token in forged.items():
        response = http.post(f"/c/{token}", data={"choice": "well"})
        assert response.status_code == 404, why
    # A choice that is neither button is no answer either.
    assert http.post(path, data={"choice": "ack"}).status_code == 404
    member = member_of(office, "김순자")
    assert member.state == MemberState.PENDING and attempts_of(office, member.id) == []
    assert http.post(path, data={"choice": "well"}).status_code == 200  # the real link still works, once


def two_unanswered_calls(cli, name: str) -> None:
    """The dialer's two calls to `name`, neither answered, through the lifecycle as a trunk reports them."""
    services = web_services(cli)
    lifecycle = services.lifecycle
    member = member_of(cli, name)
    for _ in range(2):
        cli.clock.set(max(cli.clock.now(), member_of(cli, name).next_attempt_at))
        with services.db.statements() as connection:
            claimed = lifecycle.claim(
                connection,
                run_id=member.run_id,
                limit=10,
                now=cli.clock.now(),
                today=cli.clock.now().date(),
                planned=lambda i: cli.clock.now(),
                worker=None,
            )
        [mine] = [c for c in claimed if c.phone == "+821001230001"]
        lifecycle.apply(
            [
                CallEvent(c.token, "ended", cli.clock.now() + timedelta(seconds=45), LineResult.NO_ANSWER)
                for c in claimed
            ]
        )


@pytest.mark.both_databases
def test_links_go_first_to_deaf_people_and_after_two_unanswered_calls_while_retries_go_on(office):
    instance = load_instance(office.root, office.environ)
    db = office.db()
    lifecycle = web_services(office).lifecycle
    planned = {name: member_of(office, name).next_attempt_at for name in ("김순자", "이청각")}
    now = office.clock.now()
    queue_due(db, instance, now=now, lifecycle=lifecycle)
    with db.session() as session:
        notes = {n.key: n for n in session.exec(select(OutboxMessage).where(OutboxMessage.key.like("checkin:%")))}
    deaf = member_of(office, "이청각")
    assert list(notes) == [f"checkin:member:{deaf.id}"]  # 김순자 has not missed any call yet
    # The link is the deaf person's first channel: their first call waits [checkin] text_first_hours (4) for a tap.
    assert planned["이청각"] < now + timedelta(hours=4) and deaf.next_attempt_at == now + timedelta(hours=4)
    assert member_of(office, "김순자").next_attempt_at == planned["김순자"]
    assert notes[f"checkin:member:{deaf.id}"].recipient == "+821001230002"
    assert "https://safecall.example.org/c/" in notes[f"checkin:member:{deaf.id}"].body

    two_unanswered_calls(office, "김순자")
    member = member_of(office, "김순자")
    assert member.state == MemberState.PENDING and member.attempts_made == 2  # still on the retry path
    queue_due(db, instance, now=office.clock.now(), lifecycle=lifecycle)
    queue_due(db, instance, now=office.clock.now(), lifecycle=lifecycle)  # once per member, however many ticks
    with db.session() as session:
        [note] = session.exec(select(OutboxMessage).where(OutboxMessage.key == f"checkin:member:{member.id}"))
    path = note.body.split("https://safecall.example.org", 1)[1]
    assert client(office).post(path, data={"choice": "well"}).status_code == 200
    member = member_of(office, "김순자")
    assert member.state == MemberState.ACKNOWLEDGED and member.next_attempt_at is None  # no third call
    assert [a.digit for a in attempts_of(office, member.id)] == [None, None, "tap"]


def test_a_tap_after_the_retries_ended_answers_late_and_closes_the_visit(office):
    db = office.db()
    services = web_services(office)
    member = member_of(office, "김순자")
    with db.transaction() as session:  # the week's calls ended unanswered: a visit is owed
        row = session.get(RunMember, member.id)
        row.state, row.final_at = MemberState.UNREACHABLE, office.clock.now()
        session.add(
            VisitTask(
                person_id=member.person_id,
                run_id=member.run_id,
                kind="visit",
                team="1팀",
                created_at=office.clock.now(),
                created_on=office.clock.now().date(),
            )
        )
    url = link_for_person(
        db, LinkSigner(SECRET), "", member.person_id, now=office.clock.now(), lifetime=timedelta(hours=1)
    )
    assert (
        tap(db, services.lifecycle, LinkSigner(SECRET), url.removeprefix("/c/"), "well", office.clock.now())
        == TapResult.RECORDED
    )
    assert member_of(office, "김순자").state == MemberState.ACKNOWLEDGED
    with db.session() as session:
        [visit] = session.exec(select(VisitTask))
        assert (visit.status, visit.outcome) == ("closed", "acknowledged_late")


def test_a_person_who_answered_the_phone_already_gets_nothing_recorded_by_a_tap(office):
    db = office.db()
    services = web_services(office)
    path = link_of(office, "김순자")
    member = member_of(office, "김순자")
    with db.transaction() as session:
        row = session.get(RunMember, member.id)
        row.state = MemberState.ACKNOWLEDGED
    assert (
        tap(db, services.lifecycle, LinkSigner(SECRET), path.removeprefix("/c/"), "help", office.clock.now())
        == TapResult.ANSWERED
    )
    assert attempts_of(office, member.id) == []
    with db.session() as session:
        assert session.exec(select(VisitTask)).all() == []


def test_the_cli_refuses_a_person_in_no_open_run_and_without_the_secret(cli, tmp_path):
    cli.environ.update(ENV)
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("김순자", "010-0123-0001")])))
    result = cli("checkin", "link", "김순자", ok=False)
    assert result.exit_code != 0 and "no open run" in result.output
    cli.environ.pop("SAFECALL_WEB_SECRET")
    result = cli("checkin", "link", "김순자", ok=False)
    assert result.exit_code != 0 and "SAFECALL_WEB_SECRET" in result.output


def test_the_pre_call_notice_goes_on_the_morning_of_the_first_call_once_a_week(office):
    instance = load_instance(office.root, office.environ)
    db = office.db()
    first_call = member_of(office, "김순자").next_attempt_at.astimezone(SEOUL)
    queue_due(db, instance, now=first_call.replace(hour=7, minute=0))  # before the morning hour: nothing yet
    with db.session() as session:
        assert session.exec(select(OutboxMessage).where(OutboxMessage.key.like("precall:%"))).all() == []
    for minutes in (0, 10):  # one each, however many ticks
        queue_due(db, instance, now=first_call.replace(hour=8, minute=minutes))
    with db.session() as session:
        notes = list(session.exec(select(OutboxMessage).where(OutboxMessage.key.like("precall:%"))))
    assert len(notes) == 2
    note = next(n for n in notes if n.recipient == "+821001230001")
    assert note.template == "precall_notice"
    assert f"오늘 {first_call:%H:%M}쯤 02-2148-1234 번호로" in note.body
    assert json.loads(note.variables) == {"name": "김순자", "time": f"{first_call:%H:%M}", "caller": "02-2148-1234"}


def test_the_pre_call_notice_is_off_by_default_and_skips_people_without_consent(cli, tmp_path):
    cli.environ.update(ENV)
    web_settings(cli)
    rows = [person_row("김순자", "010-0123-0001"), person_row("박동의", "010-0123-0003")]
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows)))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    db = cli.db()
    first_call = member_of(cli, "김순자").next_attempt_at.astimezone(SEOUL)
    morning = first_call.replace(hour=8, minute=30)
    queue_due(db, load_instance(cli.root, cli.environ), now=morning)
    with db.session() as session:
        assert session.exec(select(OutboxMessage)).all() == []  # off unless [checkin] precall_notice = true
    path = cli.root / "config" / "safecall.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + '\n[checkin]\nprecall_notice = true\ncaller_number = "02-2148-1234"\n',
        encoding="utf-8",
    )
    with db.transaction() as session:  # 박동의 withdrew consent after the run was launched
        person = session.exec(select(Person).where(Person.name == "박동의")).one()
        person.consent_date = None
    queue_due(db, load_instance(cli.root, cli.environ), now=morning)
    with db.session() as session:
        assert [n.recipient for n in session.exec(select(OutboxMessage))] == ["+821001230001"]


def test_the_schedulers_tick_sends_the_link_and_the_notice_through_solapi(office, solapi):
    from solapi_fake import API_KEY, API_SECRET, PF_ID, sms_table

    from safecall.notify import build_sms
    from safecall.scheduler import Scheduler

    office.environ.update({"SOLAPI_KEY": API_KEY, "SOLAPI_SECRET": API_SECRET})
    settings = office.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + sms_table(solapi.base_url)
        + f'\n[sms.alimtalk]\npf_id = "{PF_ID}"\nprecall_notice = "KA01TP00000000PRECALL"\n',
        encoding="utf-8",
    )
    services = web_services(office)
    first_call = member_of(office, "김순자").next_attempt_at.astimezone(SEOUL)
    assert first_call > office.clock.now() and office.clock.now().hour >= 8  # Monday 08:00, calls from later on
    Scheduler(services, None, build_sms(services.instance), threaded=False, dial=False).tick()
    sent = {m["to"]: m for request in solapi.requests for m in request["messages"]}
    notice = sent["01001230001"]  # 김순자: the notice as 알림톡
    assert notice["type"] == "ATA" and notice["kakaoOptions"]["templateId"] == "KA01TP00000000PRECALL"
    assert notice["kakaoOptions"]["variables"] == {
        "#{이름}": "김순자",
        "#{시각}": f"{first_call:%H:%M}",
        "#{발신번호}": "02-2148-1234",
    }
    # 이청각 (연락 방법 문자): the notice, and the link first (no 알림톡 template for it here: an LMS)
    to_deaf = [m for request in solapi.requests for m in request["messages"] if m["to"] == "01001230002"]
    [link_text] = [m for m in to_deaf if m["type"] != "ATA"]
    assert link_text["type"] == "LMS" and "https://safecall.example.org/c/" in link_text["text"]
    # Her first call waits 4 hours for the tap, and her notice gives that time, not the one planned before.
    [deaf_notice] = [m for m in to_deaf if m["type"] == "ATA"]
    held = member_of(office, "이청각").next_attempt_at.astimezone(SEOUL)
    assert (
        held == office.clock.now() + timedelta(hours=4)
        and deaf_notice["kakaoOptions"]["variables"]["#{시각}"] == f"{held:%H:%M}"
    )
    path = link_text["text"].split("https://safecall.example.org", 1)[1]
    assert client(office).post(path, data={"choice": "well"}).status_code == 200
    assert member_of(office, "이청각").state == MemberState.ACKNOWLEDGED


@pytest.mark.both_databases
def test_a_tap_during_a_call_counts_and_the_calls_unanswered_end_changes_nothing(office):
    services = web_services(office)
    path = link_of(office, "김순자")
    member = member_of(office, "김순자")
    office.clock.set(member.next_attempt_at)
    with services.db.statements() as connection:  # the dialer places the first call: the member is in a call
        claimed = services.lifecycle.claim(
            connection,
            run_id=member.run_id,
            limit=10,
            now=office.clock.now(),
            today=office.clock.now().date(),
            planned=lambda i: office.clock.now(),
            worker=None,
        )
    [call] = [c for c in claimed if c.phone == "+821001230001"]
    assert member_of(office, "김순자").state == MemberState.IN_CALL
    assert client(office).post(path, data={"choice": "well"}).status_code == 200
    services.lifecycle.apply(
        [CallEvent(call.token, "ended", office.clock.now() + timedelta(seconds=45), LineResult.NO_ANSWER)]
    )
    member = member_of(office, "김순자")
    assert member.state == MemberState.ACKNOWLEDGED and member.next_attempt_at is None  # no retry, no visit
    assert [(a.number, a.digit, a.disposition) for a in attempts_of(office, member.id)] == [
        (1, None, Disposition.NO_ANSWER),
        (2, "tap", Disposition.ACKNOWLEDGED),
    ]
    with office.db().session() as session:
        assert session.exec(select(VisitTask)).all() == []


def test_texts_go_to_a_mobile_number_only(cli, tmp_path):
    """A text to a landline never arrives: the second number when it is the mobile, else no text (calls go on)."""
    cli.environ.update(ENV)
    web_settings(cli, '\n[checkin]\nlinks = true\nprecall_notice = true\ncaller_number = "02-2148-1234"\n')
    rows = [
        person_row("김집전화", "02-2148-0001", phone2="010-0123-0005") + ["문자"],
        person_row("박집전화", "02-2148-0002") + ["문자"],
    ]
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows, header=HEADER + ["연락 방법"])))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    db = cli.db()
    queue_due(db, load_instance(cli.root, cli.environ), now=cli.clock.now())
    with db.session() as session:
        sent = sorted((n.key.split(":")[0], n.recipient) for n in session.exec(select(OutboxMessage)))
    assert sent == [("checkin", "+821001230005"), ("precall", "+821001230005")]


def test_help_pressed_on_a_call_after_a_tap_on_well_is_not_lost(office):
    services = web_services(office)
    path = link_of(office, "김순자")
    member = member_of(office, "김순자")
    office.clock.set(member.next_attempt_at)
    with services.db.statements() as connection:
        claimed = services.lifecycle.claim(
            connection,
            run_id=member.run_id,
            limit=10,
            now=office.clock.now(),
            today=office.clock.now().date(),
            planned=lambda i: office.clock.now(),
            worker=None,
        )
    [call] = [c for c in claimed if c.phone == "+821001230001"]
    assert client(office).post(path, data={"choice": "well"}).status_code == 200  # tapped while the phone rang
    services.lifecycle.record_keypress(
        call.token, "2", Disposition.HELP_REQUESTED, office.clock.now()
    )  # then answered: 2
    services.lifecycle.apply(
        [CallEvent(call.token, "ended", office.clock.now() + timedelta(seconds=30), LineResult.ANSWERED)]
    )
    assert member_of(office, "김순자").state == MemberState.HELP_REQUESTED  # when in doubt, not well
    with office.db().session() as session:
        assert [t.kind for t in session.exec(select(VisitTask))] == ["callback"]


def test_the_link_goes_as_alimtalk_when_the_office_has_its_template(office, solapi):
    from solapi_fake import API_KEY, API_SECRET, PF_ID, sms_table

    from safecall.notify import build_sms
    from safecall.scheduler import Scheduler

    office.environ.update({"SOLAPI_KEY": API_KEY, "SOLAPI_SECRET": API_SECRET})
    settings = office.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("precall_notice = true", "precall_notice = false")
        + sms_table(solapi.base_url)
        + f'\n[sms.alimtalk]\npf_id = "{PF_ID}"\ncheckin_link = "KA01TP000000000CHECKIN"\n',
        encoding="utf-8",
    )
    services = web_services(office)
    Scheduler(services, None, build_sms(services.instance), threaded=False, dial=False).tick()
    [message] = [m for request in solapi.requests for m in request["messages"]]  # 이청각's link; no notice (turned off)
    assert message["to"] == "01001230002" and message["type"] == "ATA"
    assert message["kakaoOptions"]["templateId"] == "KA01TP000000000CHECKIN"
    variables = message["kakaoOptions"]["variables"]
    assert variables["#{이름}"] == "이청각" and variables["#{링크}"].startswith("https://safecall.example.org/c/")
    path = variables["#{링크}"].removeprefix("https://safecall.example.org")
    assert client(office).post(path, data={"choice": "help"}).status_code == 200
    assert member_of(office, "이청각").state == MemberState.HELP_REQUESTED
