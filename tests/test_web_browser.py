"""The web app in a real headless browser (Debian's chromium through chromium-driver): issue 18."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import SEOUL, person_row, scripted_trunks, write_csv
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlmodel import select
from web_fixtures import (
    OFFICERS_NOTE,
    PASSWORD,
    make_app,
    move_to_another_teams_dong,
    office_with_a_week,
    officers_call_back_note,
    served,
    web_settings,
)

from safecall.store import AuditEvent, Person, VisitTask

CLOCKED_CLI = str(Path(__file__).with_name("clocked_cli.py"))  # the real command, with its clock set from outside
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    # A missing browser fails the test: .ci/run installs chromium and chromium-driver.
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), (
        "apt-get install chromium chromium-driver (.ci/run does)"
    )
    profile = tempfile.mkdtemp(prefix="safecall-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=412,915",
    ):  # a phone's screen
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations show there
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def log_in(browser, base: str, username: str) -> None:
    browser.get(f"{base}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 10).until(lambda b: "/login" not in b.current_url)


def task_names(browser) -> dict[str, int]:
    return {
        card.find_element(By.TAG_NAME, "h2").text.split(". ", 1)[1].strip(): int(card.get_attribute("data-task"))
        for card in browser.find_elements(By.CSS_SELECTOR, "li.task")
    }


def test_a_team_member_records_not_home_and_finds_the_person_on_tomorrows_list(cli, tmp_path, browser):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))  # Tuesday morning: the visit lists are out
    with served(make_app(cli)) as base:
        log_in(browser, base, "team1")
        assert browser.current_url.endswith("/team/1%ED%8C%80")  # 1팀
        assert "1팀 방문 명단 · 2026-11-24" in browser.find_element(By.TAG_NAME, "h1").text
        tasks = task_names(browser)
        # Only 1팀's visits, in priority order (high risk first); names are shown as text, never as markup.
        assert list(tasks) == ["<b>김순자</b>", "이영희"]
        first = browser.find_element(By.ID, f"task-{tasks['<b>김순자</b>']}")
        assert "4차 11/24 09:00 받지 않음" in first.text  # why: the call history in Seoul time
        assert "보호자: 김보호" in first.text
        assert [a.get_attribute("href") for a in first.find_elements(By.CSS_SELECTOR, "a.tel")] == [
            "tel:01001230001",
            "tel:01009990001",
        ]
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )  # fits a phone
        assert (
            browser.execute_script("return getComputedStyle(document.getElementById('tasks')).listStyleType") == "none"
        )  # CSS loaded

        first.find_element(By.CSS_SELECTOR, "a.record").click()
        Select(browser.find_element(By.ID, "outcome")).select_by_visible_text("부재(재방문)")
        browser.find_element(By.ID, "note").send_keys("문이 잠겨 있음, 이웃에게 연락처 남김")
        browser.find_element(By.ID, "save").click()
        WebDriverWait(browser, 10).until(lambda b: "/team/" in b.current_url)
        assert list(task_names(browser)) == ["이영희"]  # off today's open list at once

        cli.clock.advance(timedelta(days=1))  # the app's clock: Wednesday; yesterday's session has expired
        browser.get(f"{base}/team/1팀")
        assert browser.current_url.endswith("/login")
        log_in(browser, base, "team1")
        assert "2026-11-25" in browser.find_element(By.TAG_NAME, "h1").text
        tasks = task_names(browser)
        assert "<b>김순자</b>" in tasks
        note = (
            browser.find_element(By.ID, f"task-{tasks['<b>김순자</b>']}")
            .find_element(By.CLASS_NAME, "current-note")
            .text
        )
        assert "부재(재방문): 문이 잠겨 있음, 이웃에게 연락처 남김" in note and "2026-11-24 09:30" in note

        # Another team's task: 403, by URL too.
        with cli.db().session() as session:
            other = session.exec(
                select(VisitTask).join(Person, Person.id == VisitTask.person_id).where(Person.name == "박부암")
            ).one()
        browser.get(f"{base}/task/{other.id}")
        assert "403" in browser.find_element(By.TAG_NAME, "h1").text and "박부암" not in browser.page_source
        browser.get(f"{base}/team/2팀")
        assert "403" in browser.find_element(By.TAG_NAME, "h1").text

        # A form posted without its CSRF token: 403, and nothing recorded.
        browser.get(f"{base}/task/{tasks['이영희']}")
        browser.execute_script(
            "document.querySelector('#outcome-form input[name=csrf]').remove();"
            "document.getElementById('note').value = 'forged';"
            "document.getElementById('outcome-form').submit();"
        )
        WebDriverWait(browser, 10).until(lambda b: "/outcome" in b.current_url)
        assert "403" in browser.find_element(By.TAG_NAME, "h1").text
        with cli.db().session() as session:
            assert session.get(VisitTask, tasks["이영희"]).note is None

        browser.get(f"{base}/team/1팀")
        browser.find_element(By.ID, "logout").click()
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/login"))
        browser.get(f"{base}/team/1팀")
        assert browser.current_url.endswith("/login")

    assert not [entry for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]
    with cli.db().session() as session:
        events = list(session.exec(select(AuditEvent).where(AuditEvent.actor == "web:team1").order_by(AuditEvent.id)))
    actions = [e.action for e in events]
    assert actions[0] == "web.login" and actions[-1] == "web.logout" and "visit.record" in actions
    assert any(
        e.action == "web.view" and e.subject == "team 1팀 visit list" for e in events
    )  # the viewing of personal data


def test_the_officers_progress_page_counts_up_while_a_run_dials(cli, tmp_path, browser):
    web_settings(cli)
    numbers = [f"+8210012300{i:02d}" for i in range(1, 13)]
    cli.set_trunks(scripted_trunks({number: ["ack"] for number in numbers}, channels=2, cps=1))
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row(f"사람{i}", f"010-0123-00{i:02d}") for i in range(1, 13)])),
    )
    result = cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "officer", "--role", "officer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    with served(make_app(cli)) as base:
        log_in(browser, base, "officer")
        browser.get(f"{base}/progress")
        assert browser.find_element(By.ID, "no-runs")
        browser.execute_script("window.notReloaded = true")
        # `safecall campaign launch` dials in a process of its own, on a clock 20 times faster than real time.
        slot = cli.clock.now().astimezone(SEOUL).replace(hour=10, minute=0)
        dialer = subprocess.Popen(
            [
                sys.executable,
                CLOCKED_CLI,
                "--at",
                slot.isoformat(),
                "--speed",
                "20",
                "--",
                "--config",
                str(cli.root),
                "campaign",
                "launch",
                "weekly-safe-call",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = []
        try:
            deadline = time.monotonic() + 90
            while dialer.poll() is None and time.monotonic() < deadline:
                # Read in the page in one step: htmx may swap the element out between a find and a read.
                text = browser.execute_script(
                    "const b = document.querySelector('section.run b.finished'); return b && b.textContent;"
                )
                if text and (not seen or seen[-1] != text.strip()):
                    seen.append(text.strip())
                time.sleep(0.2)
            assert dialer.wait(30) == 0, dialer.stderr.read()
        finally:
            if dialer.poll() is None:
                dialer.kill()
        assert browser.execute_script("return window.notReloaded === true")  # htmx swapped the counts in place
        assert not [entry for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]
        counts = [int(text) for text in seen]
        assert len(counts) >= 3 and counts == sorted(counts) and counts[0] < 12, (
            seen
        )  # it counted up while calls were placed
        WebDriverWait(browser, 10).until(
            lambda b: not b.find_elements(By.CSS_SELECTOR, "section.run")
        )  # closed: no open run


def test_an_untouched_visit_form_cannot_be_saved_and_saving_says_what_happens_next(cli, tmp_path, browser):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    with served(make_app(cli)) as base:
        log_in(browser, base, "team1")
        task = task_names(browser)["<b>김순자</b>"]
        browser.find_element(By.ID, f"task-{task}").find_element(By.CSS_SELECTOR, "a.record").click()
        outcome = Select(browser.find_element(By.ID, "outcome"))
        assert outcome.first_selected_option.text == "결과를 선택하세요"  # no outcome until one is chosen
        browser.find_element(By.ID, "save").click()  # untouched: the browser keeps the form
        assert browser.execute_script("return document.getElementById('outcome').validity.valueMissing")
        assert browser.current_url.endswith(f"/task/{task}")
        with cli.db().session() as session:
            assert session.get(VisitTask, task).outcome is None
        # Past the browser (its `required` removed): the server refuses too, in Korean, and nothing is saved.
        browser.execute_script(
            "document.getElementById('outcome').removeAttribute('required');"
            "document.getElementById('outcome-form').submit();"
        )
        WebDriverWait(browser, 10).until(lambda b: "/outcome" in b.current_url)
        assert "결과: 선택하지 않았습니다" in browser.find_element(By.ID, "error").text
        with cli.db().session() as session:
            assert session.get(VisitTask, task).outcome is None

        outcome = Select(browser.find_element(By.ID, "outcome"))
        outcome.select_by_visible_text("부재(재방문)")
        browser.find_element(By.ID, "save").click()
        WebDriverWait(browser, 10).until(lambda b: "/team/" in b.current_url)
        # The name is data: shown as text, never as markup.
        assert (
            browser.find_element(By.ID, "message").text
            == "<b>김순자</b>: 부재(재방문) 저장됨 — 내일 명단에 다시 올라갑니다"
        )
        assert "<b>김순자</b>" not in task_names(browser)
    assert not [entry for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_a_team_sees_no_officers_note_and_a_moved_persons_task_is_on_the_new_teams_list(cli, tmp_path, browser):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    officers_call_back_note(cli, "<b>김순자</b>")
    move_to_another_teams_dong(cli, tmp_path)  # 이영희 now lives in 부암동, 2팀's
    with served(make_app(cli)) as base:
        log_in(browser, base, "team1")
        tasks = task_names(browser)
        assert list(tasks) == ["<b>김순자</b>"]  # 이영희 has left 1팀's list
        assert OFFICERS_NOTE not in browser.page_source
        browser.get(f"{base}/task/{tasks['<b>김순자</b>']}")
        assert "김순자" in browser.find_element(By.TAG_NAME, "h1").text and OFFICERS_NOTE not in browser.page_source
        browser.find_element(By.ID, "logout").click()
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/login"))

        log_in(browser, base, "team2")
        tasks = task_names(browser)
        assert set(tasks) == {"박부암", "이영희"}
        assert (
            browser.find_element(By.ID, f"task-{tasks['이영희']}").find_element(By.CLASS_NAME, "moved").text
            == "1팀에서 이관"
        )


def test_the_officers_call_back_page_puts_words_of_risk_first_and_marks_them(cli, tmp_path, browser):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    with cli.db().transaction() as session:  # a later call-back task whose spoken answer had words of risk
        plain = session.exec(select(VisitTask).where(VisitTask.kind == "callback")).one()
        other = session.exec(select(Person).where(Person.name == "이영희")).one()
        session.add(
            VisitTask(
                person_id=other.id,
                run_id=plain.run_id,
                kind="callback",
                team=other.team,
                created_at=plain.created_at + timedelta(hours=1),
                created_on=plain.created_on,
                risk_speech=True,
            )
        )
    with served(make_app(cli)) as base:
        log_in(browser, base, "officer")
        browser.get(f"{base}/callbacks")
        cards = browser.find_elements(By.CSS_SELECTOR, "div.card.callback")
        assert [card.find_element(By.TAG_NAME, "h2").text.split(" (")[0] for card in cards] == ["이영희", "최도움"]
        mark = cards[0].find_element(By.CLASS_NAME, "risk-speech-mark")
        assert mark.text.startswith("위험 발언") and mark.is_displayed()
        assert browser.execute_script("return getComputedStyle(arguments[0]).fontWeight", mark) in ("700", "bold")
        assert not cards[1].find_elements(By.CLASS_NAME, "risk-speech-mark")


def test_logout_in_the_browser_ends_the_session_on_the_server(cli, tmp_path, browser):
    import httpx

    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    with served(make_app(cli)) as base:
        log_in(browser, base, "team1")
        kept = browser.get_cookie("safecall_session")["value"]  # a copy, as malware or a shared PC would keep it
        assert httpx.get(f"{base}/team/1팀", cookies={"safecall_session": kept}).status_code == 200
        browser.find_element(By.ID, "logout").click()
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/login"))
        browser.get(f"{base}/team/1팀")
        assert browser.current_url.endswith("/login")
        copied = httpx.get(f"{base}/team/1팀", cookies={"safecall_session": kept})
        assert copied.status_code == 303 and copied.headers["location"] == "/login"
