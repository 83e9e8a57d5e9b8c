"""The officers' number page (번호 확인 필요, issue 27): who needs a number fixed, the fix checked as a roster's number,
연락처 없음 sends the person to the visit list; in headless chromium at 390x844 and over HTTP."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from conftest import SEOUL, person_row, scripted_trunks, write_csv
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlmodel import select
from starlette.testclient import TestClient
from test_web_browser import browser, log_in  # noqa: F401 (the fixture)
from test_web_phone import assert_fits, phone  # noqa: F401 (the fixture)
from web_fixtures import PASSWORD, make_app, served, web_settings

from safecall.store import AuditEvent, Person, VisitTask


def office_with_dead_numbers(cli, tmp_path) -> dict[str, int]:
    """Monday's run: 없는번호분's and 두번째분's only numbers do not exist; 이웃분 answers.
    Their number tasks, by name."""
    web_settings(cli)
    cli.set_trunks(
        scripted_trunks({"+821001230001": ["invalid"], "+821001230002": ["invalid"], "+821001230003": ["ack"]})
    )
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("없는번호분", "010-0123-0001", guardian="김보호", guardian_phone="010-0999-0001"),
                    person_row("두번째분", "010-0123-0002"),
                    person_row("이웃분", "010-0123-0003"),
                ],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")
    cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "officer", "--role", "officer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "team1", "--role", "team", "--team", "1팀", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    with cli.db().session() as session:
        return {
            person.name: task.id
            for task, person in session.exec(
                select(VisitTask, Person)
                .join(Person, Person.id == VisitTask.person_id)
                .where(VisitTask.kind == "number")
            )
        }


def person(cli, name: str) -> Person:
    with cli.db().session() as session:
        return session.exec(select(Person).where(Person.name == name)).one()


def test_an_officer_fixes_a_number_on_a_phone_and_a_bad_number_is_refused(cli, tmp_path, phone):  # noqa: F811
    tasks = office_with_dead_numbers(cli, tmp_path)
    assert set(tasks) == {"없는번호분", "두번째분"}
    with served(make_app(cli)) as base:
        log_in(phone, base, "officer")
        phone.find_element(By.CSS_SELECTOR, "nav a[href='/numbers']").click()
        WebDriverWait(phone, 10).until(lambda b: b.current_url.endswith("/numbers"))
        card = phone.find_element(By.ID, f"number-{tasks['없는번호분']}")
        assert "명단 사유: 번호 확인 필요" in card.text
        assert "없는 번호: 010-0123-0001" in card.text
        assert re.search(r"마지막 통화: 1차 2026-11-23 \d\d:\d\d 없는 번호 \(010-0123-0001\)", card.text), card.text
        assert_fits(
            phone,
            "numbers",
            [
                ".card.number h2",
                ".card.number .reason",
                ".card.number .last",
                ".card.number input[name=phone]",
                ".card.number button.save-number",
                ".card.number button.save-no-contact",
            ],
        )

        # A number that is not one: refused, said on the card, nothing changed; the typed text is shown back as text.
        card.find_element(By.NAME, "phone").send_keys("010-12<b>")
        card.find_element(By.CSS_SELECTOR, "button.save-number").click()
        error = WebDriverWait(phone, 10).until(lambda b: b.find_element(By.ID, f"error-{tasks['없는번호분']}"))
        assert "고친 번호" in error.text and "저장하지 않았습니다" in error.text
        assert phone.find_element(By.ID, f"phone-{tasks['없는번호분']}").get_attribute("value") == "010-12<b>"
        assert person(cli, "없는번호분").phone == "+821001230001"

        # The corrected number: the task closes, the person's number is replaced, both are audited with masked numbers.
        field = phone.find_element(By.ID, f"phone-{tasks['없는번호분']}")
        field.clear()
        field.send_keys("010-4567-8901")
        phone.find_element(By.CSS_SELECTOR, f"#number-{tasks['없는번호분']} button.save-number").click()
        WebDriverWait(phone, 10).until(lambda b: "saved=" in b.current_url)
        assert (
            phone.find_element(By.ID, "message").text
            == "없는번호분: 번호 수정함 저장됨 — 다음 전화부터 새 번호로 겁니다"
        )
        assert not phone.find_elements(By.ID, f"number-{tasks['없는번호분']}")
        assert person(cli, "없는번호분").phone == "+821045678901"

        # 연락처 없음: the task closes and the person is on 1팀's visit list.
        phone.find_element(By.CSS_SELECTOR, f"#number-{tasks['두번째분']} button.save-no-contact").click()
        WebDriverWait(phone, 10).until(lambda b: "saved=" in b.current_url)
        assert "두번째분: 연락처 없음 저장됨" in phone.find_element(By.ID, "message").text
        assert phone.find_element(By.ID, "empty").text == "번호를 확인할 분이 없습니다."
    with cli.db().session() as session:
        closed = {t.id: t for t in session.exec(select(VisitTask).where(VisitTask.id.in_(tasks.values())))}
        assert {t.outcome for t in closed.values()} == {"number_fixed", "no_contact"} and {
            t.status for t in closed.values()
        } == {"closed"}
        assert closed[tasks["없는번호분"]].recorded_by == "web:officer"
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == "person.phone")).all()
        assert (
            len(rows) == 1
            and "8901" in rows[0].detail
            and "4567" not in rows[0].detail
            and rows[0].actor == "web:officer"
        )
        assert (
            session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "visit.record", AuditEvent.subject == f"task {tasks['두번째분']}"
                )
            )
            .one()
            .detail
            == "outcome=no_contact"
        )
    visits = cli("visits", "list", "--date", "2026-11-24", "--format", "json").output
    assert "두번째분" in visits


@pytest.fixture
def http(cli, tmp_path):
    tasks = office_with_dead_numbers(cli, tmp_path)
    client = TestClient(make_app(cli), base_url="http://127.0.0.1", follow_redirects=False)
    return client, tasks


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def http_log_in(client, username: str):
    return client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf": csrf_of(client.get("/login"))}
    )


def test_over_http_a_bad_or_taken_number_is_refused_and_only_officers_see_the_page(cli, http):
    client, tasks = http
    http_log_in(client, "team1")
    assert client.get("/numbers").status_code == 403
    client.post("/logout", data={"csrf": csrf_of(client.get("/team/1팀"))})
    http_log_in(client, "officer")
    page = client.get("/numbers")
    token = csrf_of(page)
    task = tasks["없는번호분"]
    for typed, said in (
        ("02-12", "고친 번호:"),
        ("010-0123-0001", "없는 번호로 나온 바로 그 번호입니다"),
        ("010-0123-0003", "이미 명단에 있는 이웃분"),
        ("", "고친 번호:"),
    ):
        refused = client.post(f"/numbers/{task}", data={"csrf": token, "outcome": "number_fixed", "phone": typed})
        assert refused.status_code == 400 and said in refused.text and "저장하지 않았습니다" in refused.text, (
            typed,
            refused.text,
        )
    assert client.post(f"/numbers/{task}", data={"csrf": token, "outcome": "moved"}).status_code == 400
    assert client.post(f"/numbers/{task}", data={"outcome": "no_contact"}).status_code == 403  # no CSRF token
    assert person(cli, "없는번호분").phone == "+821001230001"
    with cli.db().session() as session:
        assert session.get(VisitTask, task).status == "open"
    saved = client.post(f"/numbers/{task}", data={"csrf": token, "outcome": "number_fixed", "phone": "010 4567 8901"})
    assert saved.status_code == 303 and saved.headers["location"] == f"/numbers?saved={task}"
    assert person(cli, "없는번호분").phone == "+821045678901"
    again = client.post(f"/numbers/{task}", data={"csrf": token, "outcome": "no_contact"})
    assert again.status_code == 400 and "이미" in again.text


def test_no_contact_puts_the_person_on_the_visit_list_when_the_run_had_not(cli, http):
    client, tasks = http
    http_log_in(client, "officer")
    token = csrf_of(client.get("/numbers"))
    with cli.db().transaction() as session:  # as if the person's calls had not ended in a visit task
        for visit in session.exec(select(VisitTask).where(VisitTask.kind == "visit")):
            session.delete(visit)
    assert "두번째분" not in cli("visits", "list", "--date", "2026-11-24", "--format", "json").output
    assert (
        client.post(f"/numbers/{tasks['두번째분']}", data={"csrf": token, "outcome": "no_contact"}).status_code == 303
    )
    with cli.db().session() as session:
        visit = session.exec(
            select(VisitTask)
            .join(Person, Person.id == VisitTask.person_id)
            .where(Person.name == "두번째분", VisitTask.kind == "visit")
        ).one()
        assert visit.status == "open" and visit.team == "1팀"
    assert "두번째분" in cli("visits", "list", "--date", "2026-11-24", "--format", "json").output
