"""Database faults, doctor, and the security rules (issue 6, points 3 and 5)."""

from __future__ import annotations

import logging
import os
import pwd
import sqlite3
import stat
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from conftest import person_row, scripted_trunks, write_csv
from sqlmodel import select

from safecall.errors import SafeCallError
from safecall.roster import import_roster
from safecall.settings import load_instance
from safecall.store import AuditEvent, Database, Person


def set_busy_timeout(cli, seconds: float) -> None:
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        f"sqlite_busy_timeout_seconds = {seconds}\n" + settings.read_text(encoding="utf-8"), encoding="utf-8"
    )


@contextmanager
def locked_by_another_process(cli, tmp_path):
    """One person imported, then the database locked by another connection
    (as another process would) until the block ends."""
    set_busy_timeout(cli, 0.3)
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    database = cli.root / "data" / "safecall.db"
    holder = sqlite3.connect(database, timeout=0.1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield database
    finally:
        holder.rollback()
        holder.close()


def test_a_locked_database_gives_a_clear_error_and_changes_nothing(cli, tmp_path):
    with locked_by_another_process(cli, tmp_path):
        result = cli(
            "recipients", "import", str(write_csv(tmp_path / "b.csv", [person_row("나", "010-0123-0002")])), ok=False
        )
        assert result.exit_code == 1
        assert "is locked by another process" in result.output and "nothing was changed" in result.output
        assert "Traceback" not in result.output
    assert [p.name for p in load_people(cli)] == ["가"]
    # Once the lock is gone, the same command works.
    cli("recipients", "import", str(tmp_path / "b.csv"))
    assert sorted(p.name for p in load_people(cli)) == ["가", "나"]


def load_people(cli):
    with cli.db().session() as session:
        return list(session.exec(select(Person)))


def test_a_full_disk_gives_a_clear_error_and_loses_nothing(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    instance = load_instance(cli.root, {})
    db = Database(instance.database_url())
    # SQLite's own "database or disk is full", by capping the file at its current size.
    sa.event.listen(
        db.engine,
        "connect",
        lambda connection, _: connection.execute(
            "PRAGMA max_page_count = " + str(connection.execute("PRAGMA page_count").fetchone()[0])
        ),
    )
    from safecall.synthetic import write_roster

    big = write_roster(tmp_path / "big.csv", 3000, ["사직동"], seed=5)
    with pytest.raises(SafeCallError, match="is full"):
        import_roster(db, big, instance.settings, now=cli.clock.now(), today=cli.clock.now().date())
    db.dispose()
    assert [p.name for p in load_people(cli)] == ["가"]


def test_doctor_checks_integrity_schema_permissions_campaigns_and_trunks(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    cli("visits", "list", "--format", "csv")  # creates the outbox
    output = cli("doctor").output
    for line in (
        "ok   database integrity: integrity_check: ok",
        "ok   database journal: journal_mode=wal",
        "ok   schema revision",
        "ok   permissions safecall.db",
        "ok   permissions data",
        "ok   permissions outbox",
        "ok   campaign weekly-safe-call: valid",
        "ok   trunk simulated",
    ):
        assert line in output, line
    (cli.root / "data" / "safecall.db").chmod(0o644)
    cli.edit_campaign("max_retries = 3", "max_retries = 1")
    bad = cli("doctor", ok=False)
    assert bad.exit_code == 1
    assert "FAIL permissions safecall.db" in bad.output and "chmod 600" in bad.output
    assert "FAIL campaign weekly-safe-call" in bad.output and "fewer than the 3" in bad.output


def test_database_and_outbox_are_owner_only(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli("campaign", "launch", "weekly-safe-call")
    cli("visits", "list", "--date", "2026-11-24", "--format", "xlsx")

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(cli.root / "data" / "safecall.db") == 0o600 and mode(cli.root / "data") == 0o700
    outbox = cli.root / "outbox"
    assert mode(outbox) == 0o700 and mode(outbox / "2026-11-24") == 0o700
    assert all(mode(f) == 0o600 for f in (outbox / "2026-11-24").iterdir())


def test_logs_mask_phone_numbers_and_never_carry_secrets(cli, tmp_path, caplog):
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"], "+821001230002": ["ack"]}))
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001"), person_row("나", "010-0123-0002")])),
    )
    with caplog.at_level(logging.DEBUG):
        cli("campaign", "launch", "weekly-safe-call")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "attempt_placing" in text and "*******0001" in text
    for whole in ("+821001230001", "01001230001", "010-0123-0001", "1001230001"):
        assert whole not in text


def test_the_audit_log_names_the_os_user_for_each_change(cli, tmp_path):
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001"), person_row("나", "010-0123-0002")])),
    )
    cli("campaign", "launch", "weekly-safe-call")
    cli("recipients", "pause", "나", "--until", "2026-12-31")
    cli("recipients", "close", "나", "--reason", "moved")
    cli("visits", "record", "1", "--outcome", "safe")
    with cli.db().session() as session:
        events = list(session.exec(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == [
        "roster.import",
        "campaign.launch",
        "person.pause",
        "person.close",
        "visit.record",
    ]
    assert {e.actor for e in events} == {f"os:{pwd.getpwuid(os.getuid()).pw_name}(uid {os.getuid()})"}
    assert all(e.at is not None and e.subject for e in events)


def with_every_connection(monkeypatch, *statements: str) -> None:
    """Every SQLite connection SafeCall opens in this test also runs `statements` (page_count is filled in)."""
    from safecall.store import db as store_db

    pragmas = store_db._sqlite_pragmas

    def and_then(connection, busy_timeout):
        pragmas(connection, busy_timeout)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        for statement in statements:
            connection.execute(statement.format(page_count=pages))

    monkeypatch.setattr(store_db, "_sqlite_pragmas", and_then)


def test_doctor_explains_a_database_locked_by_another_process(cli, tmp_path):
    with locked_by_another_process(cli, tmp_path) as database:
        result = cli("doctor", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"FAIL database writable: {database} is locked by another process (database is locked)" in result.output
    assert f"fuser {database}" in result.output
    assert "ok   database writable" in cli("doctor").output  # the lock gone, all is well again
    assert [p.name for p in load_people(cli)] == ["가"]


def doctor_on_every_connection(cli, tmp_path, monkeypatch, statement: str):
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    with_every_connection(monkeypatch, statement)
    result = cli("doctor", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    return result.output, cli.root / "data" / "safecall.db"


def test_doctor_explains_a_read_only_database(cli, tmp_path, monkeypatch):
    # As root a chmod does not stop writes; SQLite's query_only refuses them with the same error a read-only file gives.
    output, database = doctor_on_every_connection(cli, tmp_path, monkeypatch, "PRAGMA query_only = ON")
    assert f"FAIL database writable: {database} cannot be written (attempt to write a readonly database)" in output
    assert f"chmod 600 {database}; chmod 700 {database.parent}" in output
    assert "ok   database integrity" in output  # it can still be read


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only file; the query_only test above stands in")
def test_doctor_explains_a_database_file_without_write_permission(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    database = cli.root / "data" / "safecall.db"
    database.chmod(0o400)
    try:
        result = cli("doctor", ok=False)
    finally:
        database.chmod(0o600)
    assert "FAIL database writable" in result.output and "cannot be written" in result.output


def test_doctor_explains_a_full_database(cli, tmp_path, monkeypatch):
    # SQLite's own "database or disk is full", by capping the file at its current size.
    output, database = doctor_on_every_connection(cli, tmp_path, monkeypatch, "PRAGMA max_page_count = {page_count}")
    assert f"FAIL database writable: {database} is full (database or disk is full)" in output
    assert f"FAIL database space: {database} is full" in output and f"df -h {database.parent}" in output


def test_doctor_explains_a_disk_about_to_fill(cli):
    from collections import namedtuple

    from safecall.doctor import run_doctor
    from safecall.services import Services

    usage = namedtuple("usage", "total used free")
    services = Services.open(load_instance(cli.root, {}), cli.clock)
    try:
        checks = {
            c.name: c
            for c in run_doctor(
                services, wait_seconds=1, disk_usage=lambda path: usage(10**9, 10**9 - 5 * 2**20, 5 * 2**20)
            )
        }
        roomy = {
            c.name: c for c in run_doctor(services, wait_seconds=1, disk_usage=lambda path: usage(10**10, 0, 10**10))
        }
    finally:
        services.close()
    assert (
        not checks["database space"].ok
        and "5 MiB free on its disk, SafeCall needs 64 MiB" in checks["database space"].detail
    )
    assert roomy["database space"].ok and checks["database writable"].ok
