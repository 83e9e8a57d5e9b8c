"""Attacks on the web app's sessions and logins (issue 28, item 6): logout and disable end a session on the server,
the login limit holds under parallel requests and restarts, refused logins cannot grow the database, password checks
cannot stall other pages, and bad parameters get a Korean 400 page."""

from __future__ import annotations

import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import anyio
import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from conftest import SEOUL
from sqlmodel import select
from starlette.testclient import TestClient
from web_fixtures import PASSWORD, make_app, office_with_a_week, served

from safecall.store import AuditEvent, LoginCount, VisitTask, WebSession, WebUser
from safecall.users import HASHER
from safecall.web.app import PAGE_THREADS, with_page_threads
from safecall.web.auth import LoginLimiter


@pytest.fixture
def office(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    return cli


def client(cli, app=None) -> TestClient:
    return TestClient(app or make_app(cli), base_url="http://127.0.0.1", follow_redirects=False)


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def log_in(http, username: str, password: str = PASSWORD):
    return http.post("/login", data={"username": username, "password": password, "csrf": csrf_of(http.get("/login"))})


def copy_of(cli, http: TestClient) -> TestClient:
    """Another browser holding a copy of `http`'s cookie, as an attacker who kept it would."""
    thief = client(cli)
    thief.cookies.update(http.cookies)
    return thief


def audit_rows(cli, action: str) -> list[AuditEvent]:
    with cli.db().session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.mark.both_databases
def test_logout_ends_the_session_for_every_copy_of_the_cookie(office):
    http = client(office)
    log_in(http, "team1")
    page = http.get("/team/1팀")
    assert page.status_code == 200
    thief = copy_of(office, http)
    assert thief.get("/team/1팀").status_code == 200  # the copy works while the session lives
    with office.db().session() as session:
        task = session.exec(select(VisitTask).where(VisitTask.team == "1팀", VisitTask.kind == "visit")).first()
    assert http.post("/logout", data={"csrf": csrf_of(page)}).headers["location"] == "/login"
    assert thief.get("/team/1팀").headers["location"] == "/login"  # reads nothing
    write = thief.post(f"/task/{task.id}/outcome", data={"outcome": "safe", "note": "forged", "csrf": csrf_of(page)})
    assert write.headers["location"] == "/login"  # writes nothing
    with office.db().session() as session:
        assert session.get(VisitTask, task.id).status == "open"
        assert session.exec(select(WebSession)).all() == []
    assert [e.actor for e in audit_rows(office, "web.logout")] == ["web:team1"]


def test_reset_and_disable_end_the_sessions_on_the_server(office):
    first, second = client(office), client(office)
    log_in(first, "team1"), log_in(second, "officer")
    kept_first, kept_second = copy_of(office, first), copy_of(office, second)
    office("users", "reset", "team1")
    assert kept_first.get("/team/1팀").headers["location"] == "/login"
    assert first.get("/team/1팀").headers["location"] == "/login"
    assert kept_second.get("/callbacks").status_code == 200  # another account's session is untouched
    office("users", "disable", "officer")
    assert kept_second.get("/callbacks").headers["location"] == "/login"


@pytest.mark.both_databases
def test_the_login_limit_survives_a_restart(office):
    http = client(office)
    for _ in range(5):
        assert log_in(http, "team1", "wrong password!").status_code == 401
    restarted = client(office)  # a new app on the same database: as after `systemctl restart`
    assert log_in(restarted, "team1").status_code == 429
    failed = audit_rows(office, "web.login_failed")
    assert len(failed) == 5 and failed[0].subject == "user team1" and failed[0].detail == "from=testclient"


class CountingHasher(PasswordHasher):
    """argon2 as the app uses it, counting the checks and, given a gate, holding each check until it opens."""

    def __init__(self, gate: threading.Event | None = None):
        super().__init__(time_cost=HASHER.time_cost, memory_cost=HASHER.memory_cost, parallelism=HASHER.parallelism)
        self.gate, self.lock = gate, threading.Lock()
        self.checks = self.running = self.most_at_once = 0
        self.entered = threading.Semaphore(0)

    def verify(self, hash, password):
        with self.lock:
            self.checks += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.release()
        try:
            if self.gate is not None:
                assert self.gate.wait(60), "the test never opened the gate"
            return HASHER.verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


def login_form(base: str) -> tuple[dict, str]:
    page = httpx.get(f"{base}/login")
    return dict(page.cookies), csrf_of(page)


@pytest.mark.both_databases
def test_thirty_parallel_wrong_passwords_check_at_most_five(office):
    hasher = CountingHasher()
    with served(make_app(office, hasher=hasher)) as base:
        cookies, csrf = login_form(base)

        def attempt(_):
            return httpx.post(
                f"{base}/login",
                data={"username": "team1", "password": "wrong password!", "csrf": csrf},
                cookies=cookies,
                timeout=60,
            ).status_code

        with ThreadPoolExecutor(30) as pool:
            codes = list(pool.map(attempt, range(30)))
    assert hasher.checks <= 5
    assert codes.count(401) == hasher.checks and codes.count(429) == 30 - hasher.checks
    with office.db().session() as session:
        counts = {row.scope: row for row in session.exec(select(LoginCount))}
    assert counts["user"].checked == counts["user"].failed == hasher.checks
    assert counts["addr"].refused + counts["user"].refused == 30 - hasher.checks  # counted, not written one by one


def test_an_office_logging_in_at_once_from_one_address_is_not_refused(office):
    """Eight right passwords at once from one address (an office behind one NAT), with a limit of 5 failures: every one
    logs in. Only checks under way and failures count, and at most two checks are under way."""
    gate = threading.Event()
    hasher = CountingHasher(gate)
    with served(make_app(office, hasher=hasher)) as base:
        forms = [login_form(base) for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            logins = [
                pool.submit(
                    httpx.post,
                    f"{base}/login",
                    data={"username": "team1", "password": PASSWORD, "csrf": csrf},
                    cookies=cookies,
                    timeout=120,
                )
                for cookies, csrf in forms
            ]
            for _ in range(2):
                assert hasher.entered.acquire(timeout=60)  # two checks held; the other six wait for a slot
            time.sleep(0.5)  # let the six reach the server (without the slot first, they would be refused now)
            gate.set()
            codes = [login.result().status_code for login in logins]
    assert codes == [303] * 8 and hasher.most_at_once == 2


def test_waiting_password_checks_do_not_stall_other_pages(office):
    """45 logins (more than the server's 40 worker threads) wait on argon2; other pages are served meanwhile."""
    settings = office.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace(
            "secure_cookies = false", "secure_cookies = false\nlogin_attempts = 100"
        ),
        encoding="utf-8",
    )
    gate = threading.Event()
    hasher = CountingHasher(gate)
    with served(make_app(office, hasher=hasher)) as base:
        cookies, csrf = login_form(base)
        with ThreadPoolExecutor(45) as pool:
            logins = [
                pool.submit(
                    httpx.post,
                    f"{base}/login",
                    data={"username": "team1", "password": "wrong password!", "csrf": csrf},
                    cookies=cookies,
                    timeout=120,
                )
                for _ in range(45)
            ]
            for _ in range(2):
                assert hasher.entered.acquire(timeout=60)  # two checks are under way and held
            other = httpx.get(f"{base}/login", timeout=60)  # the threads are free: another page is served at once
            assert other.status_code == 200 and hasher.running == 2
            gate.set()
            codes = [login.result().status_code for login in logins]
    assert codes == [401] * 45 and hasher.checks == 45 and hasher.most_at_once == 2


def test_logins_in_progress_hold_no_thread_that_serves_pages(office):
    """With one thread for pages, two password checks held in argon2 and two more logins waiting: a team member's list
    is still served. (Logins ran their steps on the page threads before, so a page waited for argon2.)"""
    gate = threading.Event()
    gate.set()
    hasher = CountingHasher(gate)
    with served(with_page_threads(make_app(office, hasher=hasher), 1), lifespan="on") as base:
        cookies, csrf = login_form(base)
        member = httpx.post(
            f"{base}/login", data={"username": "team1", "password": PASSWORD, "csrf": csrf}, cookies=cookies, timeout=60
        )
        assert member.status_code == 303 and hasher.entered.acquire(timeout=1)
        gate.clear()
        forms = [login_form(base) for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            logins = [
                pool.submit(
                    httpx.post,
                    f"{base}/login",
                    data={"username": "team2", "password": PASSWORD, "csrf": csrf},
                    cookies=cookies,
                    timeout=120,
                )
                for cookies, csrf in forms
            ]
            for _ in range(2):
                assert hasher.entered.acquire(timeout=60)  # two checks under way and held
            page = httpx.get(f"{base}/team/1팀", cookies={**cookies, **dict(member.cookies)}, timeout=30)
            assert page.status_code == 200 and "1팀 방문 명단" in page.text and hasher.running == 2
            gate.set()
            codes = [login.result().status_code for login in logins]
    assert codes == [303] * 4 and hasher.most_at_once == 2


def test_the_server_sets_its_page_threads_when_it_starts():
    async def started() -> int:
        async def app(scope, receive, send):
            pass

        await with_page_threads(app, PAGE_THREADS)({"type": "lifespan"}, None, None)
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(started) == PAGE_THREADS


def stored_hash(cli, username: str) -> str:
    with cli.db().session() as session:
        return session.exec(select(WebUser.password_hash).where(WebUser.username == username)).one()


def test_a_hash_made_with_older_parameters_is_made_again_at_login(office):
    """Accounts hashed with argon2-cffi's default (64 MiB, 3 passes, 4 lanes) still log in, and get the parameters of
    now at their next right password; a wrong one changes nothing."""
    with office.db().transaction() as session:
        session.execute(
            sa.update(WebUser).where(WebUser.username == "team1").values(password_hash=PasswordHasher().hash(PASSWORD))
        )
    assert log_in(client(office), "team1", "wrong password!").status_code == 401
    assert stored_hash(office, "team1").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert log_in(client(office), "team1").status_code == 303
    made_again = stored_hash(office, "team1")
    assert made_again.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and HASHER.verify(made_again, PASSWORD)
    assert log_in(client(office), "team1").status_code == 303


@pytest.mark.both_databases
def test_refused_logins_with_huge_made_up_names_add_a_bounded_number_of_rows(office):
    http = client(office)
    csrf = csrf_of(http.get("/login"))

    def size() -> tuple[int, int]:
        with office.db().session() as session:
            rows = session.execute(
                sa.text("SELECT count(*), coalesce(sum(length(subject) + length(detail)), 0) FROM auditevent")
            ).one()
            keys = session.execute(sa.text("SELECT count(*), coalesce(sum(length(key)), 0) FROM logincount")).one()
        return rows[0] + keys[0], rows[1] + keys[1]

    before = size()
    for _ in range(300):
        name = secrets.token_hex(5_000)  # 10 000 characters each
        assert http.post("/login", data={"username": name, "password": "x" * 10_000, "csrf": csrf}).status_code in (
            401,
            429,
        )
    rows, chars = size()
    # 5 checked failures and the first refusal in the window; keys: the address and 5 names.
    assert rows - before[0] <= 5 + 1 + 6 and chars - before[1] <= 12 * 200
    office.clock.advance(timedelta(minutes=15))
    log_in(http, "team1")  # the next window: the last one's refusals are summed into one row
    (summary,) = audit_rows(office, "web.login_refusals")
    assert summary.subject == "addr testclient" and "refused=295 failed=5" in summary.detail


def test_keys_of_one_window_are_capped(office):
    limiter = LoginLimiter(office.db(), 5, timedelta(minutes=15), office.clock, max_keys=40)
    allowed = [limiter.reserve(f"name{index}", f"10.0.0.{index}") for index in range(100)]
    assert allowed == [True] * 20 + [False] * 80  # two keys a login: an address and a name
    with office.db().session() as session:
        assert session.execute(sa.text("SELECT count(*) FROM logincount")).scalar() == 40


@pytest.mark.parametrize(
    "path",
    [
        "/team/1팀?day=9999-12-31",
        "/team/1팀?day=0001-01-01",
        "/team/1팀?day=abc",
        "/team/1팀?page=9223372036854775807",
        "/team/1팀?page=abc",
        "/team/1팀?page=-1",
        "/task/12345678901234567890",
        "/task/abc",
        "/person/12345678901234567890",
    ],
)
def test_a_bad_parameter_is_a_korean_400_page(office, path):
    http = client(office)
    log_in(http, "officer")
    page = http.get(path)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert (
        "요청을 처리할 수 없습니다 (400)" in page.text and "Input should" not in page.text and "detail" not in page.text
    )
