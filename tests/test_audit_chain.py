"""Attacks on the audit trail (issue 28, item 11): an edited or deleted row is found by `audit --verify` and by
`doctor`; the monthly access review says who read or exported personal data, logins and failures."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import sqlalchemy as sa
from conftest import SEOUL
from starlette.testclient import TestClient
from test_web_sessions_and_logins import log_in
from web_fixtures import make_app, office_with_a_week

from safecall.audit import RETENTION_DAYS, verify_chain
from safecall.store import audit


@pytest.fixture
def office(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL))
    cli("recipients", "show", "이영희")
    return cli


def execute(cli, sql: str) -> None:
    with cli.db().engine.begin() as connection:  # as the service account could, with sqlite3 or psql
        connection.execute(sa.text(sql))


def test_an_intact_chain_verifies(office):
    verified = office("audit", "--verify")
    assert "none changed or deleted" in verified.output
    assert "audit chain" in office("doctor", ok=False).output  # listed among the checks (trunks may fail here)


@pytest.mark.both_databases
def test_an_edited_row_is_found(office):
    with office.db().session() as session:
        row_id = session.execute(sa.text("SELECT id FROM auditevent WHERE action = 'person.view'")).scalar()
    execute(office, f"UPDATE auditevent SET actor = 'os:someone-else(uid 1)' WHERE id = {row_id}")
    failed = office("audit", "--verify", ok=False)
    assert failed.exit_code == 1 and f"audit row {row_id} " in failed.output and "changed" in failed.output
    doctor = office("doctor", ok=False).output
    assert "FAIL" in doctor and f"audit row {row_id} " in doctor


@pytest.mark.both_databases
def test_a_deleted_row_in_the_middle_or_at_the_end_is_found(office):
    with office.db().session() as session:
        count = session.execute(sa.text("SELECT count(*) FROM auditevent")).scalar()
    assert count >= 6
    execute(office, "DELETE FROM auditevent WHERE seq = 3")
    assert "rows 3 to 3 of the chain are missing" in office("audit", "--verify", ok=False).output
    execute(office, f"DELETE FROM auditevent WHERE seq = {count}")
    output = office("audit", "--verify", ok=False).output
    assert f"head says {count} rows, the last row is number {count - 1}" in output


def test_a_row_written_around_the_chain_is_found(office):
    execute(
        office,
        "INSERT INTO auditevent (at, actor, action, subject, detail) VALUES ('2026-11-24 00:00:00', 'x', 'y', 'z', '')",
    )
    assert "outside the chain" in office("audit", "--verify", ok=False).output


@pytest.mark.both_databases
def test_writers_in_parallel_make_one_chain(office):
    db = office.db()

    def write(index: int) -> None:
        for n in range(10):
            with db.transaction() as session:
                audit(session, at=office.clock.now(), action="test.parallel", subject=f"writer {index}", detail=str(n))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_chain(db)
    assert report.ok and report.rows >= 40


def test_rows_are_kept_two_years():
    assert RETENTION_DAYS >= 730


def test_the_monthly_access_review(office):
    http = TestClient(make_app(office), base_url="http://127.0.0.1", follow_redirects=False)
    log_in(http, "team1", "wrong password!")
    log_in(http, "officer")
    http.get("/callbacks")
    office("visits", "list", "--team", "1팀", "--format", "csv", "--output", str(office.root / "out"))
    text = office("audit", "review", "--month", "2026-11").output
    assert "Access review for 2026-11" in text and "web:officer" in text and "callback list" in text
    assert "visits.export" not in text and "1팀" in text  # the exported list is named
    assert "team1" in text and "testclient" in text  # the failed login, with its address
    assert "user.add" in text and "none changed or deleted" in text
    assert (
        "Access review for 2026-10" in (october := office("audit", "review", "--month", "2026-10").output)
        and "web:officer" not in october
    )
    assert "--month" in office("audit", "review", "--month", "2026-13", ok=False).output
    office.use_locale("C.UTF-8")  # no language from the locale: the instance's, Korean by default
    korean = office("audit", "review", "--month", "2026-11").output
    assert (
        "2026-11 개인정보 접근 기록 점검" in korean and "개인정보 열람·내보내기" in korean and "로그인 실패" in korean
    )
