"""The web app over HTTP: logins, their limit, sessions, CSRF and roles (issue 18).
The browser tests are in test_web_browser.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from conftest import SEOUL
from sqlmodel import select
from starlette.testclient import TestClient
from web_fixtures import PASSWORD, SECRET, make_app, office_with_a_week, web_services

from safecall.store import Attempt, AuditEvent, Person, VisitTask
from safecall.web import create_web_app


@pytest.fixture
def office(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    return cli


def client(cli) -> TestClient:
    return TestClient(make_app(cli), base_url="http://127.0.0.1", follow_redirects=False)


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def log_in(http: TestClient, username: str, password: str = PASSWORD):
    return http.post("/login", data={"username": username, "password": password, "csrf": csrf_of(http.get("/login"))})


def test_login_lands_on_the_roles_page_and_a_login_without_csrf_is_refused(office):
    http = client(office)
    assert http.get("/team/1팀").headers["location"] == "/login"
    assert http.post("/login", data={"username": "team1", "password": PASSWORD}).status_code == 403
    response = log_in(http, "team1")
    assert response.status_code == 303
    assert http.get("/").headers["location"] == "/team/1%ED%8C%80"  # /team/1팀
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    page = http.get("/team/1팀")
    assert (
        page.status_code == 200
        and page.headers["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    )
    assert "&lt;b&gt;김순자&lt;/b&gt;" in page.text and "<b>김순자</b>" not in page.text  # roster text is data: escaped


def test_cookies_are_secure_by_default(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("secure_cookies = false", "secure_cookies = true"),
        encoding="utf-8",
    )
    http = TestClient(make_app(cli), base_url="https://safecall.example.org", follow_redirects=False)
    assert "Secure" in log_in(http, "team1").headers["set-cookie"]


def test_failed_logins_are_limited_per_user_and_per_address(office):
    http = client(office)
    for _ in range(5):
        assert log_in(http, "team1", "wrong password!").status_code == 401
    refused = log_in(http, "team1")  # the right password, but too many failures just now
    assert refused.status_code == 429 and "너무 많습니다" in refused.text
    office.clock.advance(timedelta(minutes=16))  # the window has passed
    assert log_in(http, "team1").status_code == 303
    # From one address, failures on many names count too.
    for name in ("a1", "a2", "a3", "a4", "a5"):
        log_in(http, name, "wrong password!")
    assert log_in(http, "officer").status_code == 429
    with office.db().session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "web.login_refused")).first() is not None


def test_a_session_expires(office):
    http = client(office)
    log_in(http, "team1")
    office.clock.advance(timedelta(minutes=479))
    assert http.get("/team/1팀").status_code == 200
    office.clock.advance(timedelta(minutes=2))  # 8 hours after login
    assert http.get("/team/1팀").headers["location"] == "/login"


def test_a_forged_or_foreign_cookie_is_no_session(office):
    http = client(office)
    log_in(http, "team1")
    other = TestClient(
        create_web_app(web_services(office), "another-secret-that-is-long-enough-000000"),
        base_url="http://127.0.0.1",
        follow_redirects=False,
    )
    other.cookies.update(http.cookies)
    assert other.get("/team/1팀").headers["location"] == "/login"


def test_a_disabled_user_is_out_at_once_and_cannot_log_in(office):
    http = client(office)
    log_in(http, "team1")
    assert http.get("/team/1팀").status_code == 200
    assert "Disabled team1" in office("users", "disable", "team1").output
    assert http.get("/team/1팀").headers["location"] == "/login"
    assert log_in(http, "team1").status_code == 401
    reset = office("users", "reset", "team1").output
    new_password = reset.split("hand it over in person): ")[1].strip()
    assert log_in(http, "team1", new_password).status_code == 303
    listed = office("users", "list").output
    assert "team1" in listed and "officer" in listed and "admin" in listed


def test_roles_team_member_officer_admin(office):
    team, officer, admin = client(office), client(office), client(office)
    log_in(team, "team1"), log_in(officer, "officer"), log_in(admin, "admin")
    with office.db().session() as session:
        tasks = {
            p.name: t for t, p in session.exec(select(VisitTask, Person).join(Person, Person.id == VisitTask.person_id))
        }
    for path in (
        "/callbacks",
        "/progress",
        "/report",
        f"/person/{tasks['박부암'].person_id}",
        "/admin/users",
        "/team/2팀",
        f"/task/{tasks['박부암'].id}",
        f"/task/{tasks['최도움'].id}",
    ):
        assert team.get(path).status_code == 403, path
    for path in (
        "/team/1팀",
        "/team/2팀",
        "/callbacks",
        "/report",
        "/report/chart.png",
        f"/person/{tasks['이영희'].person_id}",
    ):
        assert officer.get(path).status_code == 200, path
    assert officer.get("/admin/users").status_code == 403
    for path in ("/team/1팀", "/callbacks", f"/person/{tasks['이영희'].person_id}"):
        assert admin.get(path).status_code == 403, path  # an admin manages accounts, not people
    assert admin.get("/admin/users").status_code == 200
    assert officer.get("/report/chart.png").content.startswith(b"\x89PNG")


def test_the_officer_calls_back_and_sees_a_persons_history(office):
    officer = client(office)
    log_in(officer, "officer")
    page = officer.get("/callbacks")
    assert "최도움" in page.text and "tel:01001230004" in page.text
    with office.db().session() as session:
        task = session.exec(select(VisitTask).where(VisitTask.kind == "callback")).one()
    done = officer.post(
        f"/task/{task.id}/outcome",
        data={"outcome": "called_safe", "note": "허리가 아파 눌렀다고 함", "csrf": csrf_of(page)},
    )
    assert done.headers["location"] == f"/callbacks?saved={task.id}"
    page = officer.get(done.headers["location"])
    assert "최도움: 통화함: 안전 확인 저장됨 — 회신 명단에서 내려갑니다" in page.text
    assert "회신할 분이 없습니다" in page.text and "통화함: 안전 확인" in page.text and "web:officer" in page.text
    office("recipients", "pause", str(task.person_id), "--until", "2026-12-31")
    history = officer.get(f"/person/{task.person_id}").text
    assert (
        "도움 요청(2번)" in history
        and "허리가 아파 눌렀다고 함" in history
        and "person.pause until=2026-12-31" in history
    )
    with office.db().session() as session:
        viewed = session.exec(
            select(AuditEvent).where(AuditEvent.action == "web.view", AuditEvent.subject == f"person {task.person_id}")
        ).one()
    assert viewed.actor == "web:officer"


def test_a_call_back_acknowledgement_is_shown_apart_on_the_persons_page(office):
    officer = client(office)
    log_in(officer, "officer")
    with office.db().transaction() as session:
        attempt = session.exec(select(Attempt)).first()
        assert "회신 전화" not in officer.get(f"/person/{attempt.person_id}").text
        attempt.inbound = True  # as a call-back from the person's number records it (caller ID can be forged)
        session.add(attempt)
    assert "(회신 전화: 발신번호 기준)" in officer.get(f"/person/{attempt.person_id}").text


def test_the_admin_makes_and_disables_accounts(office):
    admin = client(office)
    log_in(admin, "admin")
    page = admin.get("/admin/users")
    made = admin.post("/admin/users", data={"username": "team3", "role": "team", "team": "3팀", "csrf": csrf_of(page)})
    password = re.search(r"처음 비밀번호: ([A-Za-z0-9_-]+)", made.text).group(1)
    newcomer = client(office)
    assert log_in(newcomer, "team3", password).status_code == 303
    assert newcomer.get("/team/3팀").status_code == 200
    assert (
        "팀"
        in admin.post("/admin/users", data={"username": "x", "role": "team", "team": "", "csrf": csrf_of(page)}).text
    )
    admin.post("/admin/users/team3/disable", data={"csrf": csrf_of(page)})
    assert newcomer.get("/team/3팀").headers["location"] == "/login"
    assert admin.post("/admin/users/team3/reset", data={}).status_code == 403  # no CSRF token


def test_the_web_command_needs_a_long_secret_from_the_environment(cli):
    assert "SAFECALL_WEB_SECRET is not set" in cli("web", ok=False).output
    cli.environ["SAFECALL_WEB_SECRET"] = "short"
    assert "at least 32 characters" in cli("web", ok=False).output


def test_a_long_list_comes_50_to_a_page_most_urgent_first(office):
    from safecall.store import RunMember

    with office.db().transaction() as session:
        run_id = session.exec(select(VisitTask.run_id)).first()
        for index in range(60):
            person = Person(
                person_key=f"extra-{index}",
                name=f"추가{index:02d}",
                phone=f"+8210555500{index:02d}",
                dong="사직동",
                birth_date=datetime(1940, 1, 1).date(),
                team="1팀",
                risk=1 + index % 3,
                created_at=office.clock.now(),
                updated_at=office.clock.now(),
            )
            session.add(person)
            session.flush()
            session.add(RunMember(run_id=run_id, person_id=person.id, state="unreachable"))
            session.add(
                VisitTask(
                    person_id=person.id,
                    run_id=run_id,
                    kind="visit",
                    team="1팀",
                    created_at=office.clock.now(),
                    created_on=datetime(2026, 11, 24).date(),
                    weeks_without_ack=1 + (index == 7) * 2,
                )
            )
    http = client(office)
    log_in(http, "team1")
    first, second = http.get("/team/1팀").text, http.get("/team/1팀?page=2").text
    assert (
        "모두 62명 · 1/2쪽" in first
        and first.count('class="card task"') == 50
        and second.count('class="card task"') == 12
    )
    assert re.search(r"<h2>1\. 추가07", first)  # three weeks without an answer: first
    assert 'id="next-page"' in first and 'id="next-page"' not in second


def test_an_unknown_page_is_a_korean_404(office):
    http = client(office)
    log_in(http, "team1")
    missing = http.get("/no/such/page")
    assert missing.status_code == 404 and "그런 페이지가 없습니다" in missing.text
    assert http.get("/task/99999").status_code == 404


def test_safecall_web_serves_on_loopback_by_default(cli):
    import os
    import subprocess
    import sys
    import time

    import httpx
    from live import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "safecall", "--config", str(cli.root), "web", "--port", str(port)],
        env={**os.environ, "SAFECALL_WEB_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, page = time.monotonic() + 30, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200 and "로그인" in page.text, (
            server.stderr.read() if server.poll() is not None else ""
        )
        assert "server" not in page.headers  # uvicorn's banner is off
    finally:
        server.terminate()
        server.wait(10)


def test_safecall_web_workers_share_sessions_and_csrf_through_the_database(office):
    """`safecall web --workers 2`: two processes on one socket. A session made in one is good in the other, and so
    is its CSRF token: each request below comes on a new connection, which either process may accept."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    from live import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "safecall", "--config", str(office.root), "web", "--port", str(port), "--workers", "2"],
        env={**os.environ, "SAFECALL_WEB_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, page = time.monotonic() + 30, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = httpx.get(f"{base}/login", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200, server.stderr.read() if server.poll() is not None else ""
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(workers) == 2

        def fresh(cookies) -> httpx.Client:  # a new connection each time: no keep-alive to one process
            return httpx.Client(base_url=base, cookies=cookies, headers={"Connection": "close"}, timeout=10)

        with fresh(None) as http:
            csrf = csrf_of(http.get("/login"))
            cookies = httpx.Cookies(http.cookies)
        with fresh(cookies) as http:
            assert (
                http.post("/login", data={"username": "team1", "password": PASSWORD, "csrf": csrf}).status_code == 303
            )
            cookies = httpx.Cookies(http.cookies)
        for _ in range(12):
            with fresh(cookies) as http:
                page = http.get("/team/1팀", params={"day": "2026-11-24"})
                assert page.status_code == 200 and "&lt;b&gt;김순자&lt;/b&gt;" in page.text
                csrf = csrf_of(page)
        with fresh(cookies) as http:
            assert http.post("/logout", data={"csrf": "not the token"}).status_code == 403
        with fresh(cookies) as http:
            assert http.post("/logout", data={"csrf": csrf}).status_code == 303
        for _ in range(4):  # logged out in every process
            with fresh(cookies) as http:
                assert http.get("/team/1팀").headers["location"] == "/login"
    finally:
        server.terminate()
        assert server.wait(20) == 0
    assert all(not Path(f"/proc/{worker}").exists() for worker in workers)  # the workers end with the server


def test_users_add_checks_role_team_and_password(cli):
    assert "a team member needs --team" in cli("users", "add", "kim", "--role", "team", ok=False).output
    assert "no team '9팀'" in cli("users", "add", "kim", "--role", "team", "--team", "9팀", ok=False).output
    assert "unknown role" in cli("users", "add", "kim", "--role", "boss", ok=False).output
    short = cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "kim", "--role", "officer", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    made = cli("users", "add", "kim", "--role", "officer").output
    assert "Password (shown once" in made
    assert "already exists" in cli("users", "add", "kim", "--role", "officer", ok=False).output
    assert "no user 'nobody'" in cli("users", "disable", "nobody", ok=False).output


def test_a_team_page_is_one_consistent_read_while_others_save(office, monkeypatch):
    """A note another team saves while the list is being read is not half on the page: the page is one read."""
    from safecall.store import CampaignRun
    from safecall.web import data

    db = office.db()
    with db.session() as session:
        task = session.exec(select(VisitTask).where(VisitTask.team == "1팀", VisitTask.kind == "visit")).first()
    reading_the_page = data.earlier_notes

    def a_note_saved_meanwhile(*args, **kwargs):
        """Between the list's rows and its earlier notes: a visit of a week before is written down elsewhere."""
        monkeypatch.setattr(data, "earlier_notes", reading_the_page)  # once
        with db.transaction() as session:
            now = office.clock.now()
            week = CampaignRun(
                campaign="weekly-safe-call",
                week_start=datetime(2026, 11, 16).date(),
                status="closed",
                launched_at=now,
                first_call_at=now,
            )
            session.add(week)
            session.flush()
            session.add(
                VisitTask(
                    person_id=task.person_id,
                    run_id=week.id,
                    kind="visit",
                    team="1팀",
                    created_at=now,
                    created_on=datetime(2026, 11, 17).date(),
                    status="closed",
                    note="지난주 방문: 부재",
                )
            )
        return reading_the_page(*args, **kwargs)

    http = client(office)
    log_in(http, "team1")
    monkeypatch.setattr(data, "earlier_notes", a_note_saved_meanwhile)
    during = http.get("/team/1팀")
    assert during.status_code == 200 and data.earlier_notes is reading_the_page  # the note was saved mid-page
    assert "지난주 방문: 부재" not in during.text  # not seen: the page reads the database as it was when it began
    assert "지난주 방문: 부재" in http.get("/team/1팀").text  # the next page sees it
