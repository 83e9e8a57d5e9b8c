"""Running it for years (issue 28, operations): upgrades from the previous release, backups while a run dials and
their restore, a doctor that checks what the services need, JSON logs everywhere."""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import MONDAY_MORNING, SEOUL, Cli, person_row, write_csv
from live import free_port
from solapi_fake import API_KEY, API_SECRET
from sqlmodel import select
from test_scheduler import SmtpServer

from safecall.clock import VirtualClock
from safecall.notify import build_mailer, build_sms
from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import CampaignRun, OutboxMessage
from safecall.telephony.simulated import SimulatedTrunk

FIXTURE = Path(__file__).parent / "fixtures" / "upgrade-from-previous"
WEB_SECRET = "a-web-secret-of-the-office-0123456789abcdef"
# Monday 30 November 2026, 10:05 in Seoul: the fixture's campaign slot (Monday 10:00) of the week after its run.
SLOT = datetime(2026, 11, 30, 10, 5, tzinfo=SEOUL)


def table_rows(database: Path) -> dict[str, set[tuple]]:
    """Every row of every table, but the schema's own bookkeeping (its revision, which an upgrade moves)."""
    with sqlite3.connect(database) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in ("alembic_version", "schemainfo") and not name.startswith("sqlite_")
        ]
        return {table: set(connection.execute(f'SELECT * FROM "{table}"')) for table in tables}


def columns(database: Path, table: str) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def rows_on(database: Path, table: str, names: list[str]) -> set[tuple]:
    with sqlite3.connect(database) as connection:
        return set(connection.execute(f'SELECT {", ".join(chr(34) + n + chr(34) for n in names)} FROM "{table}"'))


@pytest.fixture
def smtp_server():
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def previous_release(tmp_path, solapi):
    """A copy of the instance the previous release made, its SOLAPI pointed at this test's fake."""
    root = tmp_path / "office"
    shutil.copytree(FIXTURE, root)
    settings = root / "config" / "safecall.toml"
    settings.write_text(
        re.sub(
            r'base_url = "http://127.0.0.1:\d+"',
            f'base_url = "{solapi.base_url}"',
            settings.read_text(encoding="utf-8"),
        ),
        encoding="utf-8",
    )
    return root


def test_an_upgrade_from_the_previous_release_lists_every_problem_keeps_every_row_and_never_silences_a_week(
    previous_release, solapi, smtp_server, caplog
):
    root, database = previous_release, previous_release / "data" / "safecall.db"
    clock = VirtualClock(SLOT)
    cli = Cli(root, clock)  # the service's environment on the new release: no secrets given yet

    # Every problem at once, each with its fix: the quoted values this release no longer reads, the SOLAPI key and
    # secret, the web secret, and the campaign's quoted number.
    check = cli("upgrade", "check", ok=False).output
    assert "6 problems to fix" in check
    for key in (
        "web.port",
        "web.secure_cookies",
        "sms.api_key",
        "sms.api_secret",
        "web.secret_key",
        "retry.max_retries",
    ):
        assert key in check, key
    assert check.count("fix: ") == 6
    assert (
        "write web.port = 8080, without quotes" in check and "write web.secure_cookies = false, without quotes" in check
    )
    assert "SAFECALL_SOLAPI_API_KEY is not set" in check

    korean = Cli(root, clock)
    korean.use_locale("C.UTF-8")  # a server's usual locale: the office's language, Korean
    listed = korean("upgrade", "check", ok=False).output
    assert "고칠 점 6개" in listed and "따옴표" in listed, listed

    # db upgrade runs the check first and changes nothing while settings or secrets are wrong.
    before = table_rows(database)
    named = {table: columns(database, table) for table in before}
    refused = cli("db", "upgrade", ok=False).output
    assert "Nothing was upgraded" in refused and "web.port" in refused
    assert table_rows(database) == before and not list(database.parent.glob("*.bak"))

    # The fixes the check named, but the campaign left as it was. The officer of 1팀 now has a mobile for alerts.
    settings = root / "config" / "safecall.toml"
    text = settings.read_text(encoding="utf-8")
    text = text.replace('port = "8080"', "port = 8080").replace('secure_cookies = "no"', "secure_cookies = true")
    text = text.replace('email = "team1@example.org"', 'email = "team1@example.org"\nofficer_phone = "010-9000-0001"')
    text = text.replace(
        'outbox = "outbox"',
        f'outbox = "outbox"\n\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\n'
        f'security = "none"\nsender = "safecall@example.org"\n',
    )
    settings.write_text(text, encoding="utf-8")
    cli.environ.update(
        SAFECALL_SOLAPI_API_KEY=API_KEY, SAFECALL_SOLAPI_API_SECRET=API_SECRET, SAFECALL_WEB_SECRET=WEB_SECRET
    )
    left = cli("upgrade", "check", ok=False).output
    assert "1 problems to fix" in left and "retry.max_retries" in left

    upgraded = cli("db", "upgrade").output  # a campaign's problem is listed but does not block the database
    assert "retry.max_retries" in upgraded
    assert "0008" not in cli("db", "status").output.split("this SafeCall")[0]  # upgraded past the previous release's
    # Schema 16 moved the notifications (ids kept) and the team lists
    # (new ids; their kind is the list's) into one outbox.
    moved = {"notification": {}, "delivery": {"id": None, "kind": "list_kind"}}
    for table, rows in before.items():  # every row kept, on the columns it had (a newer schema may add some)
        if table in moved:
            kept = [i for i, name in enumerate(named[table]) if moved[table].get(name, name)]
            now_named = [moved[table].get(named[table][i], named[table][i]) for i in kept]
            assert rows and {tuple(row[i] for i in kept) for row in rows} <= rows_on(database, "outbox", now_named), (
                table
            )
            continue
        assert rows <= rows_on(database, table, named[table]), table
    assert len(before["person"]) == 5 and len(before["attempt"]) == 10

    # The slot comes with the campaign still invalid: the officers are told once, by e-mail and text, with why.
    instance = load_instance(root, cli.environ)
    services = Services.open(instance, clock)
    scheduler = Scheduler(services, build_mailer(instance), build_sms(instance), threaded=False)
    with caplog.at_level(logging.INFO, logger="safecall"):
        scheduler.tick()
        clock.advance(timedelta(minutes=30))
        scheduler.tick()
        clock.advance(timedelta(days=1))
        scheduler.tick()
    alerts = [
        (to, message)
        for to, message in smtp_server.inbox.messages
        if "weekly-safe-call" in message.get_content() and "시작하지 못했습니다" in message.get_content()
    ]
    assert sorted(to for to, _ in alerts) == [["team1@example.org"], ["team2@example.org"], ["team3@example.org"]]
    assert all("retry.max_retries" in message.get_content() for _, message in alerts)  # it says why
    texts = solapi.handsets.get("01090000001", [])
    assert len(texts) == 1 and "weekly-safe-call" in texts[0]["text"]
    assert sum("campaign_cannot_run" in record.getMessage() for record in caplog.records) == 1
    with services.db.session() as session:
        assert not session.exec(
            select(CampaignRun).where(CampaignRun.week_start == SLOT.date())
        ).first()  # never half-run
        sms_alerts = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.key.startswith("officer-campaign-cannot-run"), OutboxMessage.channel == "sms"
            )
        ).all()
        assert [n.status for n in sms_alerts] == ["delivered"]
    services.db.dispose()

    # Fixed, the campaign runs at once.
    cli.edit_campaign('max_retries = "3"', "max_retries = 3")
    assert "Ready" in cli("upgrade", "check").output


def test_an_older_release_meeting_a_newer_database_says_which_release_to_use(previous_release):
    # The files as the newer release left them: its upgrade check had the quotes taken out.
    for path, old, fixed in (
        ("config/safecall.toml", 'port = "8080"', "port = 8080"),
        ("config/safecall.toml", 'secure_cookies = "no"', "secure_cookies = false"),
        ("campaigns/weekly-safe-call.toml", 'max_retries = "3"', "max_retries = 3"),
    ):
        file = previous_release / path
        file.write_text(file.read_text(encoding="utf-8").replace(old, fixed), encoding="utf-8")
    database = previous_release / "data" / "safecall.db"
    with sqlite3.connect(database) as connection:  # what a newer release's `db upgrade` leaves
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
        connection.execute(
            "INSERT INTO auditevent (at, actor, action, subject, detail, real_at) VALUES "
            "('2027-03-02 01:00:00', 'os:safecall(uid 999)', 'db.upgrade', 'database', "
            "'SafeCall 0.9.0: schema 0008 -> 0099', '2027-03-02 01:00:00')"
        )
    before = table_rows(database)
    cli = Cli(
        previous_release,
        VirtualClock(SLOT),
        {
            "SAFECALL_SOLAPI_API_KEY": API_KEY,
            "SAFECALL_SOLAPI_API_SECRET": API_SECRET,
            "SAFECALL_WEB_SECRET": WEB_SECRET,
        },
    )
    for command in (["db", "upgrade"], ["recipients", "list"]):
        output = cli(*command, ok=False).output
        assert "upgraded by SafeCall 0.9.0" in output and "install SafeCall 0.9.0 again" in output, output
        assert "Rolling back" in output and "Traceback" not in output and "alembic" not in output.lower()
    assert "0.9.0" in cli("upgrade", "check", ok=False).output
    assert table_rows(database) == before and not list(database.parent.glob("*.bak"))  # no misleading backup


def test_a_backup_taken_while_a_run_dials_restores_into_a_fresh_instance_that_doctor_passes(cli, tmp_path, monkeypatch):
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row(f"사람{i}", f"010-0123-{i:04d}") for i in range(1, 41)])),
    )
    placed, paused, resume = [], threading.Event(), threading.Event()
    originate = SimulatedTrunk.originate

    def slow_originate(self, request):  # the 15th call waits until the test has taken its backup
        placed.append(request)
        if len(placed) == 15:
            paused.set()
            resume.wait(30)
        return originate(self, request)

    monkeypatch.setattr(SimulatedTrunk, "originate", slow_originate)
    cli.clock.set(MONDAY_MORNING.replace(hour=10))
    instance = load_instance(cli.root, cli.environ)
    services = Services.open(instance, cli.clock)
    dialling = threading.Thread(target=Scheduler(services, None, None, threaded=False).tick)
    dialling.start()
    try:
        assert paused.wait(30)
        database = cli.root / "data" / "safecall.db"
        live = table_rows(database)
        assert (
            len(live["attempt"]) >= 14 and Path(str(database) + "-wal").stat().st_size > 0
        )  # written, still in the WAL
        copied = tmp_path / "plain-copy.db"
        shutil.copy(database, copied)  # what `cp` gets: the file without its WAL
        backup = tmp_path / "backups" / "during-the-run.db"
        assert str(backup) in cli("backup", "--to", str(backup)).output.replace("\n", "")
    finally:
        resume.set()
        dialling.join(60)
    services.db.dispose()
    assert table_rows(backup) == live  # consistent: every committed row, nothing half-written
    assert len(table_rows(copied).get("attempt", ())) < len(live["attempt"])

    fresh = Cli(tmp_path / "fresh", cli.clock)
    fresh("init", str(fresh.root))
    restored = fresh("restore", str(backup), "--yes").output
    assert "Restored" in restored
    assert table_rows(fresh.root / "data" / "safecall.db") == live
    doctor = fresh("doctor").output
    assert "FAIL" not in doctor and "integrity_check: ok" in doctor
    assert "not a SafeCall SQLite backup" in fresh("restore", str(tmp_path / "r.csv"), "--yes", ok=False).output


def test_the_scheduler_takes_a_daily_backup_and_keeps_the_newest(cli):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + '\n[backup]\ndaily = true\nat = "09:00"\nkeep = 3\n', encoding="utf-8"
    )
    assert "FAIL backups: no backup in" in cli("doctor", ok=False).output  # Monday 08:00
    instance = load_instance(cli.root, cli.environ)
    services = Services.open(instance, cli.clock)
    scheduler = Scheduler(services, None, None, threaded=False, dial=False)
    scheduler.backup_if_due(cli.clock.now())
    assert not list((cli.root / "backups").glob("*"))  # before its time
    for day in range(5):
        cli.clock.set(datetime(2026, 11, 23 + day, 9, 0, tzinfo=SEOUL))
        scheduler.backup_if_due(cli.clock.now())
        cli.clock.advance(timedelta(hours=12))
        scheduler.backup_if_due(cli.clock.now())  # once a day
    services.db.dispose()
    kept = sorted(p.name for p in (cli.root / "backups").iterdir())
    assert kept == ["safecall-20261125T000000Z.db", "safecall-20261126T000000Z.db", "safecall-20261127T000000Z.db"]
    assert "ok   backups: the newest backup" in cli("doctor").output
    cli.clock.advance(timedelta(days=2))
    assert re.search(
        r"FAIL backups: the newest backup, .* is 60 hours old: is the scheduler running",
        cli("doctor", ok=False).output.replace("\n", ""),
    )


def test_doctor_checks_secrets_smtp_sms_and_the_web_settings(cli, solapi, smtp_server):
    settings = cli.root / "config" / "safecall.toml"
    cli.db().dispose()  # the instance's database, as its first command makes it
    closed = free_port()
    base = settings.read_text(encoding="utf-8")

    def configure(smtp_port: int, solapi_url: str, web: str) -> str:
        settings.write_text(
            base
            + f'''
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "safecall@example.org"
password = {{ env = "SMTP_PASSWORD" }}
username = "safecall"

[sms]
provider = "solapi"
api_key = {{ env = "SOLAPI_KEY" }}
api_secret = {{ env = "SOLAPI_SECRET" }}
sender = "02-2148-1234"
callback_number = "02-2148-1234"
base_url = "{solapi_url}"

[web]
{web}
''',
            encoding="utf-8",
        )
        return cli("doctor", ok=False).output.replace("\n", " ")

    output = configure(smtp_server.port, solapi.base_url, 'host = "0.0.0.0"\nsecure_cookies = false')
    for key in ("smtp.password", "sms.api_key", "sms.api_secret", "web.secret_key"):
        assert re.search(rf"FAIL secret {re.escape(key)}: secret: environment variable \w+ is not set", output), key
    assert "FAIL web host" in output and "listens on every network" in output
    assert "FAIL web cookies" in output
    assert f"ok   SMTP 127.0.0.1:{smtp_server.port}: answered" in output

    cli.environ.update(SMTP_PASSWORD="pw", SOLAPI_KEY=API_KEY, SOLAPI_SECRET=API_SECRET, SAFECALL_WEB_SECRET="short")
    output = configure(smtp_server.port, solapi.base_url, "")
    assert "FAIL secret web.secret_key: env:SAFECALL_WEB_SECRET has 5 characters" in output
    assert "ok   SMS provider solapi" in output and "accepted the API key" in output
    cli.environ["SAFECALL_WEB_SECRET"] = WEB_SECRET
    assert "FAIL" not in cli("doctor").output  # everything a service needs is there

    cli.environ["SOLAPI_SECRET"] = "not-the-secret"
    assert "refused the API key and secret (HTTP 403)" in cli("doctor", ok=False).output.replace("\n", " ")
    cli.environ["SOLAPI_SECRET"] = API_SECRET
    output = configure(closed, f"http://127.0.0.1:{closed}", "")  # nothing listens there
    assert re.search(rf"FAIL SMTP 127.0.0.1:{closed}: cannot reach it within 3 s: .*refused", output, re.IGNORECASE), (
        output
    )
    assert re.search(
        rf"FAIL SMS provider solapi: cannot reach http://127.0.0.1:{closed} within 3 s: .*refused",
        output,
        re.IGNORECASE,
    )


def test_fatal_errors_of_services_are_json_lines_and_two_config_errors_stay_two_lines(cli):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + "\n[web]\nport = 0\nsession_minutes = 0\n", encoding="utf-8"
    )
    shown = cli("config", "show", ok=False).output
    assert "\ufffd" not in shown
    assert re.search(r"key 'web.port'.*\n.*key 'web.session_minutes'", shown), shown
    for command in (["scheduler", "run", "--seconds", "1"], ["web"], ["serve", "--seconds", "1"]):
        result = cli(*command, ok=False)
        assert result.exit_code == 1 and not result.stdout
        lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0]["level"] == "error" and lines[0]["event"] == "fatal", lines
        assert "web.port" in lines[0]["message"] and "web.session_minutes" in lines[0]["message"]


def test_the_web_logs_its_access_and_errors_as_json_lines(cli, tmp_path):
    port = free_port()
    environ = {**cli.environ, "SAFECALL_WEB_SECRET": WEB_SECRET, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "safecall", "--config", str(cli.root), "web", "--port", str(port)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):  # until it listens
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/login").status_code
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("safecall web did not start")
        assert status == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    assert any(line["logger"] == "uvicorn.error" and "Started server process" in line["message"] for line in lines), (
        lines
    )
    access = [line for line in lines if line["event"] == "http_request"]
    assert access and access[0]["path"] == "/login" and access[0]["status"] == 200 and access[0]["method"] == "GET"


UNITS = Path(__file__).parents[1] / "deploy" / "systemd"


@pytest.mark.parametrize(
    "unit", ["safecall-scheduler.service", "safecall-web.service", "safecall-serve.service", "safecall-worker@.service"]
)
def test_each_systemd_unit_scores_2_or_less_and_shares_one_instance_and_read_only_code(unit):
    path = UNITS / unit
    analysed = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True, text=True
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", analysed.stdout)
    assert score, analysed.stdout + analysed.stderr
    assert float(score.group(1)) <= 2.0
    text = path.read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert "Environment=SAFECALL_CONFIG=/var/lib/safecall" in text.splitlines()
    assert settings["ReadWritePaths"] == "/var/lib/safecall" and settings["ProtectSystem"] == "strict"
    assert settings["ExecStart"].startswith("/opt/safecall/.venv/bin/safecall ")  # code under /opt: read-only
    assert settings["EnvironmentFile"] == "/etc/safecall/secrets.env"  # a path alone, no comment on the line


@pytest.mark.both_databases
def test_db_upgrade_backs_up_first_and_backup_restore_round_trips_on_either_database(cli, database_url, tmp_path):
    from alembic import command
    from alembic.script import ScriptDirectory

    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row(f"사람{i}", f"010-0123-{i:04d}") for i in range(1, 6)])),
    )
    db = cli.db()
    config = db._alembic_config()
    head = db.schema_state().head
    previous = next(ScriptDirectory.from_config(config).walk_revisions()).down_revision
    with db.engine.begin() as connection:  # the schema of the release before this one's newest revision
        config.attributes["connection"] = connection
        command.downgrade(config, previous)
    db.dispose()

    upgraded = cli("db", "upgrade").output.replace("\n", "")
    if database_url:  # PostgreSQL: pg_dump into [backup] folder first
        [dump] = (cli.root / "backups").glob(f"safecall-before-{head}-*.dump")
        assert str(dump) in upgraded and dump.stat().st_mode & 0o077 == 0
        listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
        assert listed.returncode == 0 and "TABLE DATA public person" in listed.stdout
        from safecall.backup import BackupError, take_backup

        with pytest.raises(BackupError, match="pg_dump` was not found: install the PostgreSQL client"):
            take_backup(cli.db(), tmp_path / "x.dump", pg_dump=str(tmp_path / "no-such-pg_dump"))
        assert not (tmp_path / "x.dump").exists()
    else:
        assert (cli.root / "data" / f"safecall.db.before-{head}.bak").exists()
    assert cli("db", "status").exit_code == 0

    backup = tmp_path / "kept" / ("people.dump" if database_url else "people.db")
    cli("backup", "--to", str(backup))
    cli("recipients", "close", "사람1", "--reason", "moved")
    assert "closed" in cli("recipients", "show", "사람1").output.lower()
    cli("restore", str(backup), "--yes")
    assert "closed" not in cli("recipients", "show", "사람1").output.lower()  # as it was at the backup
    assert "already exists" in cli("backup", "--to", str(backup), ok=False).output


def test_upgrade_check_reads_each_file_on_its_own_so_one_broken_file_hides_no_other(cli):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + "\n[web]\nport = 0\nsession_minutes = 0\n", encoding="utf-8"
    )
    trunks = cli.root / "config" / "trunks.toml"
    trunks.write_text(trunks.read_text(encoding="utf-8").replace("channels = 30", "channels = 0"), encoding="utf-8")
    cli.edit_campaign('weekday = "mon"', 'weekday = "someday"')
    output = cli("upgrade", "check", ok=False).output
    assert "4 problems to fix" in output
    for expected in ("key 'web.port'", "key 'web.session_minutes'", "trunks.toml", "channels", "schedule.weekday"):
        assert expected in output, (expected, output)
    assert "Nothing was upgraded" in cli("db", "upgrade", ok=False).output
