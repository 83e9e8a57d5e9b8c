"""Pages that fit a phone and tell the truth (issue 27): at 390x844 in real headless chromium, the columns that matter
are on screen on every page with a table, and a person's status says what is true."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import SEOUL
from selenium.webdriver.common.by import By
from sqlmodel import select
from test_web_browser import browser, log_in  # noqa: F401 (the fixture)
from web_fixtures import make_app, office_with_a_week, served

from safecall.store import VisitTask

PHONE = (390, 844)


def on_screen(driver, element) -> bool:
    """Displayed, and inside the viewport's width (no sideways scrolling needed to read it)."""
    box = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right, r.width];", element
    )
    return (
        element.is_displayed()
        and box[2] > 0
        and box[0] >= 0
        and box[1] <= driver.execute_script("return window.innerWidth")
    )


def assert_fits(driver, page: str, selectors: list[str]) -> None:
    assert driver.execute_script("return window.innerWidth") == PHONE[0]
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), (
        f"{page} scrolls sideways"
    )
    for selector in selectors:
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        assert found, f"{page}: nothing matches {selector}"
        hidden = [e.text for e in found if not on_screen(driver, e)]
        assert not hidden, f"{page}: {selector} off screen: {hidden}"


@pytest.fixture
def phone(browser):  # noqa: F811
    browser.set_window_size(*PHONE)
    if browser.execute_script("return window.innerWidth") != PHONE[0]:  # the window's frame: size the viewport itself
        frame = PHONE[0] - browser.execute_script("return window.innerWidth")
        browser.set_window_size(PHONE[0] + frame, PHONE[1])
    return browser


def test_every_table_keeps_its_key_columns_on_a_phone(cli, tmp_path, phone):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    with cli.db().session() as session:
        callback = session.exec(select(VisitTask).where(VisitTask.kind == "callback")).one()
    cli("visits", "record", str(callback.id), "--outcome", "called_safe")
    with served(make_app(cli)) as base:
        log_in(phone, base, "officer")
        phone.get(f"{base}/report")
        assert_fits(phone, "report", ["#report td.help", "#report td.unreachable", "#report td.outcomes"])
        phone.get(f"{base}/callbacks")
        assert_fits(phone, "callbacks", ["#closed td.outcome"])
        phone.get(f"{base}/person/{callback.person_id}")
        assert_fits(phone, "person", ["#runs td.state", "#attempts td.result", "#visits td.outcome"])
        status = phone.find_element(By.CSS_SELECTOR, ".card").text
        assert "상태: 안심콜 이용 중" in status and "통화 중" not in status  # not on a call: never "통화 중"
        phone.find_element(By.ID, "logout").click()
        log_in(phone, base, "admin")
        phone.get(f"{base}/admin/users")
        assert_fits(phone, "users", ["#accounts td.key", "#accounts td.actions button"])
        assert [b.text for b in phone.find_elements(By.CSS_SELECTOR, "#accounts td.actions button")][:2] == [
            "비밀번호 재설정",
            "사용 중지",
        ]
        phone.find_element(By.ID, "logout").click()
        log_in(phone, base, "team1")
        assert_fits(phone, "team list", ["li.task h2", "li.task a.record", "li.task .why"])
