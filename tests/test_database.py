"""Schema migrations (Alembic) on SQLite and PostgreSQL, and the in-place upgrade of a SafeCall 0.1 SQLite file."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import sqlite
from sqlmodel import SQLModel

from safecall.audit import verify_chain
from safecall.lifecycle import CallLifecycle, RunRulesBook
from safecall.store import Database, StoreError
from safecall.store.models import UTCDateTime

FIXTURES = Path(__file__).parent / "fixtures"


def shipped_revisions() -> list[str]:
    """The migration chain this SafeCall ships, oldest first (one line: no branches)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(Database._alembic_config())
    assert len(scripts.get_heads()) == 1, "the migrations must form one chain"
    return [script.revision for script in scripts.walk_revisions()][::-1]


HEAD = shipped_revisions()[-1]
AFTER_0001 = ", ".join(shipped_revisions()[1:])


def schema_differences(db: Database) -> list:
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)


@pytest.mark.both_databases
def test_a_new_database_is_created_at_the_newest_revision_matching_the_models(cli, database_url):
    cli("recipients", "list")  # first use creates the schema
    db = cli.db()
    state = db.schema_state()
    assert state.current == state.head == HEAD
    assert schema_differences(db) == []
    result = cli("db", "status")
    assert f"schema revision: {HEAD}; this SafeCall: {HEAD}" in result.output


@pytest.mark.both_databases
def test_migrations_go_down_and_up_again(cli, database_url):
    cli("recipients", "list")
    db = cli.db()
    config = db._alembic_config()

    def downgrade(revision: str) -> None:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

    def attempt_indexes() -> set[str]:
        return {index["name"] for index in sa.inspect(db.engine).get_indexes("attempt")}

    def attempt_columns() -> set[str]:
        return {column["name"] for column in sa.inspect(db.engine).get_columns("attempt")}

    assert {"ivr_started_at", "inbound", "speech_text", "speech_confidence"} <= attempt_columns()
    assert "call_window" in {column["name"] for column in sa.inspect(db.engine).get_columns("person")}
    assert "delivery_status" in {column["name"] for column in sa.inspect(db.engine).get_columns("outbox")}
    downgrade("0014")
    assert {"notification", "delivery"} <= set(sa.inspect(db.engine).get_table_names())
    assert "outbox" not in sa.inspect(db.engine).get_table_names()
    assert "delivery_status" in {column["name"] for column in sa.inspect(db.engine).get_columns("notification")}
    downgrade("0011")
    assert not {"rules", "rules_version"} & {
        column["name"] for column in sa.inspect(db.engine).get_columns("campaignrun")
    }
    assert {"websession", "logincount", "auditchain"} <= set(sa.inspect(db.engine).get_table_names())
    assert "moved_from" in {column["name"] for column in sa.inspect(db.engine).get_columns("visittask")}
    downgrade("0008")
    assert not {"websession", "logincount", "auditchain"} & set(sa.inspect(db.engine).get_table_names())
    assert not {"seq", "hash"} & {column["name"] for column in sa.inspect(db.engine).get_columns("auditevent")}
    assert "moved_from" not in {column["name"] for column in sa.inspect(db.engine).get_columns("visittask")}
    downgrade("0007")
    assert "delivery_status" not in {column["name"] for column in sa.inspect(db.engine).get_columns("notification")}
    downgrade("0006")
    assert "call_window" not in {column["name"] for column in sa.inspect(db.engine).get_columns("person")}
    assert "voice_style" in {column["name"] for column in sa.inspect(db.engine).get_columns("person")}
    downgrade("0005")
    assert "voice_style" not in {column["name"] for column in sa.inspect(db.engine).get_columns("person")}
    assert "webuser" in sa.inspect(db.engine).get_table_names()
    downgrade("0004")
    assert "webuser" not in sa.inspect(db.engine).get_table_names()
    assert not {"real_at"} & {column["name"] for column in sa.inspect(db.engine).get_columns("auditevent")}
    assert not {"recorded_real_at", "revisit_on"} & {
        column["name"] for column in sa.inspect(db.engine).get_columns("visittask")
    }
    downgrade("0003")
    assert not {"ivr_started_at", "inbound", "speech_text", "speech_confidence"} & attempt_columns()
    assert (
        not {"ix_attempt_member_id", "ix_attempt_person_id"} & attempt_indexes()
        and "ix_attempt_run_id" in attempt_indexes()
    )
    downgrade("0002")
    assert {
        "ix_attempt_member_id",
        "ix_attempt_person_id",
        "ix_attempt_trunk_call_id",
        "ix_attempt_worker",
    } <= attempt_indexes()
    downgrade("0001")
    assert db.schema_state().current == "0001"
    assert "worker" not in {column["name"] for column in sa.inspect(db.engine).get_columns("attempt")}
    failed = cli("campaign", "list", ok=False)
    assert failed.exit_code == 1 and "run `safecall db upgrade`" in failed.output
    assert AFTER_0001 in cli("db", "upgrade").output
    assert schema_differences(db) == []
    chain = verify_chain(db)  # `recipients list` wrote a row before the downgrade: rebuilt into the chain
    assert chain.ok and chain.rows >= 1
    with db.engine.connect() as connection:
        assert "schemainfo" not in sa.inspect(connection).get_table_names()  # alembic_version is the one record


@pytest.mark.both_databases
def test_the_one_outbox_takes_every_notification_and_delivery_and_gives_them_back(cli, database_url):
    """Schema 16: a database at 0015 with guardian texts, officer alerts, a check-in link, a pre-call notice and team
    lists moves every row into the outbox by the real alembic upgrade, sent on as before;
    a downgrade moves them back."""
    cli("recipients", "list")
    db = cli.db()
    config = db._alembic_config()

    def migrate(step, revision: str) -> None:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)

    def rows(sql: str) -> list[tuple]:
        with db.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]

    migrate(command.downgrade, "0015")
    at = "2026-11-25 00:30:00"
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO notification (id, key, channel, recipient, body, status, attempts, last_error,"
                " next_try_at, sent_at, template, variables, provider_id, delivery_status, delivered_at) VALUES"
                " (3, 'guardian:person:1:week:2026-11-23', 'sms', '+821012345678', '안부 문자', 'delivered', 1, NULL,"
                "  :at, :at, 'guardian_unreachable', '{\"name\": \"김영희\"}', 'M-1',"
                "  '4000 발송 처리 완료 (SMS)', :at),"
                " (5, 'officer-overdue:task:9', 'email', 'officer@example.org', '기한 초과', 'failed', 8,"
                "  'SMTP down', :at, NULL, NULL, NULL, NULL, NULL, NULL),"
                " (6, 'checkin:member:4', 'sms', '+821012340004', '링크', 'pending', 0, NULL, :at, NULL,"
                "  'checkin_link', NULL, NULL, NULL, NULL),"
                " (7, 'precall:person:2:week:2026-11-23', 'sms', '+821012340002', '안내', 'sent', 1, NULL, :at, :at,"
                "  'precall_notice', NULL, NULL, NULL, NULL)"
            ),
            {"at": at},
        )
        connection.execute(
            sa.text(
                "INSERT INTO delivery (id, day, team, kind, status, attempts, last_error, next_try_at, sent_at, files)"
                " VALUES"
                " (1, '2026-11-25', '1팀', 'visit', 'sent', 1, NULL, :at, :at, 'outbox/a.xlsx\noutbox/a.csv'),"
                " (2, '2026-11-25', '1팀', 'callback', 'pending', 2, 'SMTP 421', :at, NULL, 'outbox/b.csv')"
            ),
            {"at": at},
        )

    migrate(command.upgrade, "head")
    assert not {"notification", "delivery"} & set(sa.inspect(db.engine).get_table_names())
    assert schema_differences(db) == []
    assert rows(
        "SELECT id, key, kind, channel, recipient, body, status, attempts, last_error, template, provider_id,"
        " delivery_status, list_kind, files FROM outbox WHERE kind <> 'team_list' ORDER BY id"
    ) == [
        (
            3,
            "guardian:person:1:week:2026-11-23",
            "guardian_text",
            "sms",
            "+821012345678",
            "안부 문자",
            "delivered",
            1,
            None,
            "guardian_unreachable",
            "M-1",
            "4000 발송 처리 완료 (SMS)",
            None,
            "",
        ),
        (
            5,
            "officer-overdue:task:9",
            "officer_alert",
            "email",
            "officer@example.org",
            "기한 초과",
            "failed",
            8,
            "SMTP down",
            None,
            None,
            None,
            None,
            "",
        ),
        (
            6,
            "checkin:member:4",
            "checkin_link",
            "sms",
            "+821012340004",
            "링크",
            "pending",
            0,
            None,
            "checkin_link",
            None,
            None,
            None,
            "",
        ),
        (
            7,
            "precall:person:2:week:2026-11-23",
            "precall_notice",
            "sms",
            "+821012340002",
            "안내",
            "sent",
            1,
            None,
            "precall_notice",
            None,
            None,
            None,
            "",
        ),
    ]
    assert rows(
        "SELECT key, channel, recipient, status, attempts, last_error, team, list_kind, files FROM outbox"
        " WHERE kind = 'team_list' ORDER BY list_kind DESC"
    ) == [
        ("team-list:2026-11-25:1팀:visit", "email", "", "sent", 1, None, "1팀", "visit", "outbox/a.xlsx\noutbox/a.csv"),
        ("team-list:2026-11-25:1팀:callback", "email", "", "pending", 2, "SMTP 421", "1팀", "callback", "outbox/b.csv"),
    ]
    # The moved rows are the code's: a list's day and times read back, and the next message queued gets a fresh id.
    from safecall.delivery import deliveries_for
    from safecall.domain import Channel, OutboxKind
    from safecall.outbox import queue
    from safecall.store import OutboxMessage

    lists = deliveries_for(db, datetime(2026, 11, 25).date())
    assert [(m.team, m.list_kind, m.status) for m in lists] == [
        ("1팀", "callback", "pending"),
        ("1팀", "visit", "sent"),
    ]
    assert lists[1].sent_at == datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
    with db.transaction() as session:
        assert queue(
            session,
            key="officer-overdue:task:10",
            kind=OutboxKind.OFFICER_ALERT,
            channel=Channel.EMAIL,
            recipient="officer@example.org",
            body="기한 초과",
            now=datetime(2026, 11, 26, tzinfo=UTC),
        )
    with db.session() as session:
        assert len(session.exec(sa.select(OutboxMessage.id)).all()) == 7

    migrate(command.downgrade, "0015")
    assert "outbox" not in sa.inspect(db.engine).get_table_names()
    assert rows("SELECT id, key, channel, status, attempts, template, delivery_status FROM notification ORDER BY id")[
        :4
    ] == [
        (
            3,
            "guardian:person:1:week:2026-11-23",
            "sms",
            "delivered",
            1,
            "guardian_unreachable",
            "4000 발송 처리 완료 (SMS)",
        ),
        (5, "officer-overdue:task:9", "email", "failed", 8, None, None),
        (6, "checkin:member:4", "sms", "pending", 0, "checkin_link", None),
        (7, "precall:person:2:week:2026-11-23", "sms", "sent", 1, "precall_notice", None),
    ]
    assert len(rows("SELECT id FROM notification")) == 5
    assert rows("SELECT team, kind, status, attempts, last_error, files FROM delivery ORDER BY kind DESC") == [
        ("1팀", "visit", "sent", 1, None, "outbox/a.xlsx\noutbox/a.csv"),
        ("1팀", "callback", "pending", 2, "SMTP 421", "outbox/b.csv"),
    ]
    migrate(command.upgrade, "head")
    assert len(rows("SELECT id FROM outbox")) == 7


def test_a_safecall_0_1_sqlite_file_upgrades_in_place_keeping_everything(cli):
    # Made by SafeCall 0.1 (before migrations): 200 people, one run with 192 acknowledgements.
    target = cli.root / "data" / "safecall.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "safecall-0.1.db", target)
    before = (
        sqlite3.connect(target).execute("SELECT count(*) FROM attempt WHERE disposition = 'acknowledged'").fetchone()[0]
    )
    assert before == 192

    refused = cli("campaign", "status", ok=False)
    assert refused.exit_code == 1
    assert "schema revision 0001" in refused.output and "safecall db upgrade" in refused.output
    assert cli("db", "status", ok=False).exit_code == 1
    assert "FAIL schema revision" in cli("doctor", ok=False).output

    upgraded = cli("db", "upgrade")
    assert f"applied {AFTER_0001}" in upgraded.output
    backup = target.with_name(f"safecall.db.before-{HEAD}.bak")
    assert backup.exists() and backup.stat().st_mode & 0o077 == 0
    assert sqlite3.connect(backup).execute("SELECT count(*) FROM attempt").fetchone()[0] == 264

    status = cli("campaign", "status").output
    assert "192" in status
    db = cli.db()
    assert schema_differences(db) == []
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM person")).scalar() == 200
        assert (
            connection.execute(sa.text("SELECT count(*) FROM attempt WHERE disposition = 'acknowledged'")).scalar()
            == 192
        )
    chain = verify_chain(db)  # the rows written before the chain existed join it in the order they were written
    assert chain.ok and chain.rows == 3  # the two rows written before the chain existed, and the upgrade's own
    assert "nothing to do" in cli("db", "upgrade").output


@pytest.mark.parametrize("database_backend", ["postgresql"], indirect=True)
def test_a_connection_the_server_dropped_fails_once_clearly_and_is_replaced(cli, database_url):
    # A PostgreSQL restart or failover ends every session; the engine's hot path runs on the driver's cursor.
    cli("recipients", "list")
    db = cli.db()
    outcomes = CallLifecycle(db, RunRulesBook(parse=None, current=None))  # only asks whether a call is live
    assert outcomes.live_call("no-such-token") is None
    other = sa.create_engine(database_url)  # another client, as the server's restart would be
    with other.connect() as connection:
        ended = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    other.dispose()
    assert ended >= 1
    with pytest.raises(StoreError, match="database error"):
        outcomes.live_call("no-such-token")
    assert outcomes.live_call("no-such-token") is None  # a new connection, not the dead one again


@pytest.mark.both_databases
def test_a_unit_of_statements_is_all_or_nothing_and_its_guards_name_the_fault(cli, database_url):
    from datetime import datetime

    from safecall.lifecycle import TASK
    from safecall.store import AuditEvent
    from safecall.store.prepared import Prepared, new_values

    cli("recipients", "list")
    db = cli.db()
    audit = AuditEvent.__table__
    add = sa.insert(audit).values(detail="", **new_values("at", "actor", "action", "subject"))
    times = sa.select(audit.c.at).where(audit.c.actor == sa.bindparam("who"))
    at = datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)
    row = {"new_at": at, "new_actor": "tester", "new_action": "a", "new_subject": "s"}
    with pytest.raises(RuntimeError):
        with db.statements() as connection:
            db.prepared(add).execute(connection, row)
            raise RuntimeError("a crash mid-unit")
    with db.statements() as connection:
        assert db.prepared(times).all(connection, {"who": "tester"}) == []  # rolled back whole
        db.prepared(add).execute(connection, row)
    with db.statements() as connection:
        assert db.prepared(times).scalar(connection, {"who": "tester"}) == at  # read back aware, in UTC
    with pytest.raises(ValueError, match=r"parameters missing .*\['new_subject'\]"):
        with db.statements() as connection:
            db.prepared(add).execute(connection, {k: v for k, v in row.items() if k != "new_subject"})
    with pytest.raises(ValueError, match="does not run column defaults: give status, .*overdue"):
        Prepared(
            sa.insert(TASK).values(new_values("person_id", "run_id", "kind", "team", "created_at", "created_on")),
            db.engine.dialect,
        )


@pytest.mark.both_databases
def test_a_prepared_statement_may_use_a_parameter_twice(cli, database_url):
    """The team's list binds one day in two conditions: its value is converted once, not twice (a date turned into
    SQLite's text, then refused as not a date)."""
    from datetime import date

    cli("recipients", "list")
    db = cli.db()
    twice = sa.select(
        sa.bindparam("day", type_=sa.Date).label("first"), sa.bindparam("day", type_=sa.Date).label("second")
    )
    with db.statements() as connection:
        row = db.prepared(twice).first(connection, {"day": date(2026, 11, 24)})
    assert (row.first, row.second) == (date(2026, 11, 24), date(2026, 11, 24))


@pytest.mark.both_databases
def test_a_held_connection_serves_one_thread_one_unit_at_a_time_and_is_dropped_when_it_fails(cli, database_url):
    import threading

    cli("recipients", "list")
    db = cli.db()
    backend_id = sa.select(
        sa.literal_column("pg_backend_pid()" if db.engine.dialect.name == "postgresql" else "1").label("backend")
    )
    bad = sa.select(sa.literal_column("x")).select_from(sa.table("no_such_table"))
    seen = []
    with db.holding_a_connection():
        with db.statements() as first:
            with db.statements() as nested:  # a unit inside a unit never shares its transaction
                assert nested is not first
        with db.statements() as again:
            assert again is first

        def unit_on_another_thread():
            with db.statements() as connection:
                seen.append(connection)

        other_thread = threading.Thread(target=unit_on_another_thread)
        other_thread.start()
        other_thread.join(5)
        assert seen and seen[0] is not first  # other threads use the pool as ever
        with pytest.raises(RuntimeError):
            with db.statements() as connection:
                raise RuntimeError("not the database's fault")
        with db.statements() as connection:
            assert connection is first  # rolled back, still held
        with pytest.raises(
            (StoreError, db.engine.dialect.loaded_dbapi.Error)
        ):  # SQLite: operational; PostgreSQL: programming
            with db.statements() as connection:
                db.prepared(bad).all(connection, {})
        with db.statements() as connection:
            assert connection is not first  # the failed connection is not used again
            assert db.prepared(backend_id).scalar(connection, {}) is not None


def test_timestamps_are_stored_as_utc_text_sqlalchemy_reads_back(tmp_path):
    # UTCDateTime writes SQLite's text itself (the hot path);
    # it must be exactly what SQLAlchemy's DATETIME writes and reads.
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    sqlalchemys = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    seoul = timezone(timedelta(hours=9))
    for moment in (
        datetime(2026, 11, 23, 9, 0, tzinfo=seoul),
        datetime(2026, 11, 23, 0, 30, 5, 7, tzinfo=seoul),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(999, 1, 2, tzinfo=UTC),
    ):
        assert ours(moment) == sqlalchemys(moment.astimezone(UTC).replace(tzinfo=None))
    assert ours(datetime(2026, 11, 23, 9, 0, tzinfo=seoul)) == "2026-11-23 00:00:00.000000"
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 11, 23, 9, 0))

    table = sa.Table("t", sa.MetaData(), sa.Column("at", UTCDateTime))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 't.db'}")
    table.create(engine)
    moment = datetime(2026, 11, 23, 9, 0, 1, 250, tzinfo=seoul)
    with engine.begin() as connection:
        connection.execute(table.insert(), {"at": moment})
        assert connection.execute(sa.select(table.c.at)).scalar() == moment
        assert connection.execute(sa.select(table.c.at).where(table.c.at == moment)).scalar() == moment
    engine.dispose()


def test_the_newest_revision_is_read_from_the_migration_files_as_alembic_reads_it():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from safecall.store.db import MIGRATIONS, migration_head

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert migration_head() == ScriptDirectory.from_config(config).get_current_head()


def test_a_database_at_the_newest_revision_is_opened_without_importing_alembic(tmp_path):
    # Every command opens the store; alembic (a quarter of a second) is only for a database that needs work.
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'safecall.db'}"
    Database(url).create_schema()
    probe = (
        "import sys; from safecall.store import Database; db = Database(sys.argv[1]); db.create_schema(); "
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'alembic'}))"
    )
    opened = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True)
    assert opened.stdout.strip() == "[]"
    with sqlite3.connect(tmp_path / "safecall.db") as connection:  # one revision behind: alembic is asked, and refuses
        connection.execute("UPDATE alembic_version SET version_num = '0007'")
    with pytest.raises(StoreError, match="this SafeCall needs"):
        Database(url).create_schema()
