"""The one-tap check-in page in a real headless browser (Debian's chromium): a person's phone, 390 px wide."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlmodel import select
from test_checkin import link_of, member_of, office  # noqa: F401  (fixtures)
from test_web_browser import browser  # noqa: F401  (fixture)
from web_fixtures import make_app, served

from safecall.domain import MemberState
from safecall.store import Attempt, VisitTask


def test_a_person_taps_help_on_a_phone_and_the_link_then_records_nothing_more(office, browser):  # noqa: F811
    path = link_of(office, "김순자")
    browser.set_window_size(390, 844)
    with served(make_app(office)) as base:
        browser.get(base + path)
        assert browser.find_element(By.TAG_NAME, "h1").text == "김순자님, 잘 지내세요?"
        well, help_ = browser.find_element(By.ID, "well"), browser.find_element(By.ID, "help")
        assert (well.text, help_.text) == ("잘 지내요", "도움이 필요해요")
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )  # fits the phone
        for button in (well, help_):  # large: the whole width, and tall enough for an unsteady finger
            assert button.size["height"] >= 70 and button.size["width"] >= 300, button.size
        help_.click()
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "message"))  # the answer's page
        assert browser.find_element(By.ID, "checkin").get_attribute("data-result") == "recorded"
        assert "담당 공무원이 오늘 중으로 연락드립니다" in browser.find_element(By.ID, "message").text
        member = member_of(office, "김순자")
        assert member.state == MemberState.HELP_REQUESTED
        with office.db().session() as session:
            assert [t.kind for t in session.exec(select(VisitTask))] == ["callback"]

        browser.get(base + path)  # the same link again, as from the text once more
        assert browser.find_element(By.ID, "checkin").get_attribute("data-result") == "used"
        assert browser.find_elements(By.ID, "well") == []  # no buttons: nothing more can be recorded
        with office.db().session() as session:
            assert len(session.exec(select(Attempt).where(Attempt.member_id == member.id)).all()) == 1
        assert not [entry for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]
