"""Deliveries without personal data, encrypted attachments, and an audit trail that cannot be forged (issue 18)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msoffcrypto
import pytest
from conftest import SEOUL
from msoffcrypto.exceptions import DecryptionError, InvalidKeyError
from openpyxl import load_workbook
from sqlmodel import select
from test_scheduler import smtp  # noqa: F401  (the real SMTP server fixture)
from web_fixtures import office_with_a_week, web_services

from safecall.delivery import publish_day
from safecall.escalation import mark_overdue, queue_escalations, send_notifications
from safecall.notify import build_mailer
from safecall.store import AuditEvent, Database, Person, VisitTask

CLI = [sys.executable, "-m", "safecall"]  # the installed command, as a process
CLOCKED_CLI = str(Path(__file__).with_name("clocked_cli.py"))
ATTACHMENT_PASSWORD = "열쇠-2026-office-only"


def with_smtp(cli, port: int, extra: str = "") -> None:
    path = cli.root / "config" / "safecall.toml"
    text = path.read_text(encoding="utf-8").replace(
        'email = "team1@example.org"', 'email = "team1@example.org"\nofficer_email = "officer1@example.org"'
    )
    text = text.replace(
        'outbox = "outbox"',
        f'outbox = "outbox"\n\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f'sender = "safecall@example.org"\ntimeout_seconds = 5\n{extra}',
    )
    path.write_text(text, encoding="utf-8")


def personal_data(cli) -> list[str]:
    """Every name, phone number (in each way it is written), address and guardian of the roster."""
    with cli.db().session() as session:
        people = list(session.exec(select(Person)))
    values = []
    for p in people:
        for phone in filter(None, (p.phone, p.guardian_phone)):
            digits = phone.replace("+82", "0")
            values += [phone, digits, f"{digits[:3]}-{digits[3:7]}-{digits[7:]}", digits[-8:]]
        values += [p.name, p.address] + ([p.guardian_name] if p.guardian_name else [])
    return values


def test_every_e_mail_carries_counts_and_a_link_never_a_name_or_number(cli, tmp_path, smtp):  # noqa: F811
    office_with_a_week(cli, tmp_path)
    with_smtp(cli, smtp.port)
    smtp.start()
    services = web_services(cli)
    now = datetime(2026, 11, 26, 10, 0, tzinfo=SEOUL)  # Thursday, 49 hours on: the visits are overdue too
    mailer = build_mailer(services.instance)
    publish_day(services.db, services.instance, mailer, now.date(), now=now)
    queue_escalations(services.db, services.instance.settings, {}, now=now)
    mark_overdue(services.db, services.instance.settings, now=now)
    send_notifications(services.db, services.instance.settings, mailer, None, now=now)
    messages = [m for _, m in smtp.inbox.messages]
    subjects = {m["Subject"] for m in messages}
    assert (
        "[안심콜] 2026-11-26 방문 대상 명단 (1팀)" in subjects
        and "[안심콜] 2026-11-26 도움 요청 회신 명단 (1팀)" in subjects
    )
    assert any(s.startswith("[안심콜] 방문 결과 기록 기한 초과: 과제") for s in subjects)
    assert any(s.startswith("[안심콜] 도움 요청 회신 필요") for s in subjects)
    team1 = next(m for rcpts, m in smtp.inbox.messages if "team1@example.org" in rcpts and "방문 대상" in m["Subject"])
    assert "2명" in team1.get_content() and "https://safecall.example.org/team/1%ED%8C%80" in team1.get_content()
    forbidden = personal_data(cli)
    for message in messages:
        assert not message.is_multipart() and not list(message.iter_attachments())  # attachments are off by default
        text = f"{message['Subject']}\n{message.get_content()}"
        leaked = [value for value in forbidden if value in text]
        assert not leaked, (message["Subject"], leaked)


def test_an_attached_list_is_encrypted_and_opens_only_with_its_password(cli, tmp_path, smtp):  # noqa: F811
    office_with_a_week(cli, tmp_path)
    with_smtp(
        cli, smtp.port, '\n[delivery]\nattachments = true\nattachment_password = { env = "SAFECALL_LIST_PASSWORD" }\n'
    )
    cli.environ["SAFECALL_LIST_PASSWORD"] = ATTACHMENT_PASSWORD
    smtp.start()
    cli.clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=SEOUL))
    cli("visits", "deliver", "--date", "2026-11-24")
    [mail] = smtp.to("team1@example.org", "방문 대상")
    [(filename, locked)] = [(part.get_filename(), part.get_payload(decode=True)) for part in mail.iter_attachments()]
    assert filename == "2026-11-24-visit-1팀-암호.xlsx"
    text = f"{mail['Subject']}\n{mail.get_body(('plain',)).get_content()}"
    assert ATTACHMENT_PASSWORD not in text and "암호는 이 메일에 없습니다" in text
    assert not any(ATTACHMENT_PASSWORD in m.as_string() for _, m in smtp.inbox.messages)  # nor in any other message
    with pytest.raises(zipfile.BadZipFile):
        load_workbook(io.BytesIO(locked))  # not a workbook without the password
    for wrong in ("", "열쇠-2026", "wrong password"):
        with pytest.raises((InvalidKeyError, DecryptionError)):
            office_file = msoffcrypto.OfficeFile(io.BytesIO(locked))
            office_file.load_key(password=wrong, verify_password=True)
            office_file.decrypt(io.BytesIO())
    office_file = msoffcrypto.OfficeFile(io.BytesIO(locked))
    office_file.load_key(password=ATTACHMENT_PASSWORD)
    opened = io.BytesIO()
    office_file.decrypt(opened)
    sheet = load_workbook(opened).active
    assert [row[4] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["<b>김순자</b>", "이영희"]


def test_attachments_need_a_password_reference(cli, tmp_path):
    path = cli.root / "config" / "safecall.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[delivery]\nattachments = true\n", encoding="utf-8")
    assert "attachment_password" in cli("config", "show", ok=False).output


def test_the_cli_actor_is_the_os_user_id_not_logname_or_user(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    env = {**os.environ, "LOGNAME": "mallory", "USER": "mallory", "USERNAME": "mallory", "LNAME": "mallory"}
    with cli.db().session() as session:
        task = session.exec(select(VisitTask).where(VisitTask.kind == "visit")).first()
    result = subprocess.run(
        [*CLI, "--config", str(cli.root), "visits", "record", str(task.id), "--outcome", "safe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    import pwd

    expected = f"os:{pwd.getpwuid(os.getuid()).pw_name}(uid {os.getuid()})"
    with cli.db().session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "visit.record")).one()
        recorded = session.get(VisitTask, task.id)
    assert event.actor == expected and recorded.recorded_by == expected
    assert "mallory" not in event.actor
    shown = subprocess.run(
        [*CLI, "--config", str(cli.root), "audit", "--actor", expected],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "visit.record" in shown and "mallory" not in shown


def test_a_record_made_on_a_moved_clock_stores_the_real_time(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    with cli.db().session() as session:
        task = session.exec(select(VisitTask).where(VisitTask.kind == "visit")).first()
    before = datetime.now(UTC)
    # The real command in a process of its own, its clock set to a day that has passed.
    result = subprocess.run(
        [
            sys.executable,
            CLOCKED_CLI,
            "--at",
            "2026-11-20T10:00+09:00",
            "--",
            "--config",
            str(cli.root),
            "visits",
            "record",
            str(task.id),
            "--outcome",
            "not_home",
            "--note",
            "훈련",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    after = datetime.now(UTC)
    with cli.db().session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "visit.record")).one()
        recorded = session.get(VisitTask, task.id)
    assert event.at == datetime(2026, 11, 20, 1, 0, tzinfo=UTC) == recorded.recorded_at  # the clock's time, as given
    assert (
        before - timedelta(seconds=1) <= event.real_at <= after
        and before - timedelta(seconds=1) <= recorded.recorded_real_at <= after
    )
    shown = cli("audit", "--action", "visit.*").output
    assert before.astimezone(SEOUL).strftime("%Y-%m-%d") in shown and "2026-11-20 10:00:00" in shown


def test_a_drill_under_now_stores_the_real_time_in_its_copy(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    before = datetime.now(UTC)
    cli("drill", "weekly-safe-call", "--now", "2026-11-30T08:00+09:00", "--dir", str(tmp_path / "drill"))
    after = datetime.now(UTC)
    copy = next((tmp_path / "drill").rglob("*.db"))
    with Database(f"sqlite:///{copy}").session() as session:
        launched = session.exec(select(AuditEvent).where(AuditEvent.action == "campaign.launch")).all()
    drilled = [e for e in launched if e.at >= datetime(2026, 11, 29, tzinfo=UTC)]
    assert drilled, [(e.at, e.real_at) for e in launched]
    for event in drilled:  # --now sets the time the launch was for, never the time it was written
        assert before - timedelta(seconds=1) <= event.real_at <= after


def test_viewing_and_exporting_personal_data_is_logged_and_the_trail_filters(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    cli("visits", "list", "--date", "2026-11-24", "--team", "1팀")
    cli("visits", "list", "--date", "2026-11-24", "--format", "xlsx", "--output", str(tmp_path / "l.xlsx"))
    cli("recipients", "show", "이영희")
    cli("recipients", "list")
    actions = cli("audit", "--limit", "50").output
    for action in ("visits.view", "visits.export", "person.view", "recipients.view", "user.add", "roster.import"):
        assert action in actions, action
    only = cli("audit", "--action", "visits.export").output
    assert "visits.export" in only and "visits.view" not in only and "1 records" in only
    assert "0 records" in cli("audit", "--since", "2999-01-01").output
    assert "user.add" in cli("audit", "--subject", "user team1").output
