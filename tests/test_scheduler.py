"""Unattended operation (issue 5): the scheduler across restarts, daily delivery over real SMTP, escalation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from conftest import SEOUL, person_row, scripted_trunks, write_csv
from live import free_port
from safecall.notify import build_mailer, build_sms
from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import CampaignRun, Delivery, Notification, VisitTask


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on loopback, started and stopped by the test."""

    def __init__(self, port: int):
        self.port, self.inbox, self.controller = port, Inbox(), None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def to(self, address, about: str = ""):
        return [m for rcpts, m in self.inbox.messages if address in rcpts and about in (m["Subject"] or "")]


@pytest.fixture
def smtp():
    server = SmtpServer(free_port())
    yield server
    server.stop()


def configure(cli, smtp_port: int, sms: str = "") -> None:
    settings = cli.root / "config" / "safecall.toml"
    text = settings.read_text(encoding="utf-8")
    text = text.replace('email = "team1@example.org"', 'email = "team1@example.org"\nofficer_email = "officer1@example.org"')
    text = text.replace('outbox = "outbox"', f'''outbox = "outbox"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "safecall@example.org"
timeout_seconds = 5

[delivery]
publish_at = "08:00"
retry_minutes = 10

[visits]
overdue_after_hours = 48
{sms}''')
    settings.write_text(text, encoding="utf-8")
    cli.set_trunks(scripted_trunks({"+821001230001": ["ack"], "+821001230002": ["no_answer"], "+821001230003": ["help"]}))


def roster(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [
        person_row("응답", "010-0123-0001"),
        person_row("무응답", "010-0123-0002", guardian="보호자", guardian_phone="010-0999-0002"),
        person_row("도움", "010-0123-0003", guardian="보호자2", guardian_phone="010-0999-0003"),
    ])))


def scheduler_for(cli) -> Scheduler:
    services = Services.open(load_instance(cli.root, {}), cli.clock)
    mailer = build_mailer(services.instance)
    return Scheduler(services, mailer, build_sms(services.instance, mailer), threaded=False)


def runs(cli):
    with cli.db().session() as session:
        return list(session.exec(select(CampaignRun)))


def test_a_slot_missed_while_down_is_launched_on_start_and_never_twice(cli, tmp_path, smtp):
    configure(cli, smtp.port)
    roster(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 23, 9, 59, tzinfo=SEOUL))
    scheduler_for(cli).tick()
    assert runs(cli) == []  # before Monday 10:00
    # Down from 09:59 to 11:30: the restarted scheduler launches the missed slot at once.
    cli.clock.set(datetime(2026, 11, 23, 11, 30, tzinfo=SEOUL))
    restarted = scheduler_for(cli)
    restarted.tick()
    [run] = runs(cli)
    assert run.launched_at.astimezone(SEOUL).strftime("%H:%M") == "11:30"
    for _ in range(3):
        scheduler_for(cli).tick()
    assert len(runs(cli)) == 1
    # Retries are dialled on later ticks (every half hour here), and the run closes with the week's results.
    for half_hours in range(1, 100):
        cli.clock.set(datetime(2026, 11, 23, 11, 30, tzinfo=SEOUL) + timedelta(minutes=30 * half_hours))
        restarted.tick()
    [run] = runs(cli)
    assert run.status == "closed"
    assert "final non-responders (home visit) │ 1" in cli("campaign", "status").output


def test_a_week_whose_window_passed_is_not_launched_late(cli, tmp_path, smtp):
    configure(cli, smtp.port)
    roster(cli, tmp_path)
    cli.clock.set(datetime(2026, 11, 27, 19, 0, tzinfo=SEOUL))  # Friday evening: the whole calling week was missed
    scheduler_for(cli).tick()
    assert runs(cli) == []


def week_then_morning(cli, tmp_path, smtp):
    configure(cli, smtp.port, sms='\n[sms]\nprovider = "email_gateway"\ngateway_address = "{number}@sms.example.org"\n')
    cli.edit_campaign("guardian_sms = false", "guardian_sms = true")
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    for half_hours in range(0, 48):  # Monday 10:00 to Tuesday 10:00
        cli.clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL) + timedelta(minutes=30 * half_hours))
        scheduler.tick()
    return scheduler


def test_morning_delivery_survives_an_smtp_failure_then_succeeds(cli, tmp_path, smtp):
    scheduler = week_then_morning(cli, tmp_path, smtp)  # SMTP is down all this time
    cli.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=SEOUL))
    scheduler.tick()
    with cli.db().session() as session:
        deliveries = list(session.exec(select(Delivery).where(Delivery.day == datetime(2026, 11, 25).date())))
    visit_lists = {d.team: d for d in deliveries if d.kind == "visit"}
    assert set(visit_lists) == {"1팀", "2팀", "3팀"}
    assert all(d.status == "pending" and d.attempts >= 1 and "SMTP" in d.last_error for d in visit_lists.values())
    outbox = cli.root / "outbox" / "2026-11-25"
    assert (outbox / "2026-11-25-visit-1팀.xlsx").exists() and (outbox / "2026-11-25-visit-1팀.csv").exists()
    status = cli("visits", "deliveries", "--date", "2026-11-25").output
    assert "pending" in status and "Connection refused" in status

    smtp.start()
    cli.clock.set(datetime(2026, 11, 25, 8, 11, tzinfo=SEOUL))
    scheduler.tick()
    [team_mail] = smtp.to("team1@example.org", "2026-11-25 방문")
    assert "방문 대상 명단" in team_mail["Subject"]
    attachments = {part.get_filename(): part.get_payload(decode=True) for part in team_mail.iter_attachments()}
    assert set(attachments) == {"2026-11-25-visit-1팀.xlsx", "2026-11-25-visit-1팀.csv"}
    assert "무응답" in attachments["2026-11-25-visit-1팀.csv"].decode("utf-8-sig")
    assert len(smtp.to("team2@example.org", "2026-11-25")) == 1 and len(smtp.to("team3@example.org", "2026-11-25")) == 1  # empty lists too
    # Earlier days' lists, held back (and backed off) while SMTP was down, go out within the hour; each once.
    cli.clock.set(datetime(2026, 11, 25, 9, 15, tzinfo=SEOUL))
    scheduler.tick()
    scheduler.tick()
    assert len(smtp.to("team1@example.org", "2026-11-24")) == 1 and len(smtp.to("team1@example.org", "2026-11-23")) == 1
    assert len(smtp.to("team1@example.org", "2026-11-25 방문")) == 1 and len(smtp.to("01009990002@sms.example.org")) == 1
    # The officer got the callback list and the same-day notice for the person who pressed 2.
    officer = smtp.to("officer1@example.org")
    assert any("도움 요청" in m["Subject"] for m in officer) and any("도움을 요청" in m.get_content() for m in officer if not m.is_multipart())
    # Guardians were texted through the e-mail gateway, once each.
    assert len(smtp.to("01009990002@sms.example.org")) == 1 and len(smtp.to("01009990003@sms.example.org")) == 1
    assert "무응답님이 이번 주 안부 전화에 응답하지" in smtp.to("01009990002@sms.example.org")[0].get_content()
    assert "sent" in cli("visits", "deliveries", "--date", "2026-11-25").output
    # A list can be sent again by hand.
    cli("visits", "deliver", "--date", "2026-11-25")
    assert len(smtp.to("team1@example.org", "2026-11-25 방문")) == 2


def test_deliveries_that_keep_failing_are_reported_not_dropped(cli, tmp_path, smtp):
    scheduler = week_then_morning(cli, tmp_path, smtp)
    cli.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=SEOUL))
    for minutes in range(0, 600, 30):
        cli.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=SEOUL) + timedelta(minutes=minutes))
        scheduler.tick()
    result = cli("visits", "deliveries", "--date", "2026-11-25")
    assert "failed" in result.output and "were not delivered" in result.output
    with cli.db().session() as session:
        assert all(d.status == "failed" for d in session.exec(select(Delivery)))
        assert all(n.status == "failed" for n in session.exec(select(Notification)))


def test_visits_without_an_outcome_become_overdue_and_go_to_the_top(cli, tmp_path, smtp):
    smtp.start()
    scheduler = week_then_morning(cli, tmp_path, smtp)
    cli.clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=SEOUL))  # more than 48 h after the visit task appeared
    scheduler.tick()
    with cli.db().session() as session:
        [task] = session.exec(select(VisitTask).where(VisitTask.kind == "visit")).all()
    assert task.overdue
    assert any("방문 결과 미기록" in m.get_content() for m in smtp.to("officer1@example.org") if not m.is_multipart())
    cli("visits", "list", "--date", "2026-11-27", "--format", "csv", "--output", str(tmp_path / "l.csv"))
    assert "예" in (tmp_path / "l.csv").read_text(encoding="utf-8-sig").splitlines()[1].split(",")[3]


def test_the_scheduler_process_stops_cleanly_on_sigterm(cli, tmp_path):
    env = {**os.environ, "SAFECALL_CONFIG": str(cli.root)}
    process = subprocess.Popen([sys.executable, str(Path(__file__).parents[1] / "cli.py"), "scheduler", "run", "--interval", "0.2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        started = False
        while time.monotonic() < deadline and not started:
            time.sleep(0.2)
            started = (cli.root / "data" / "safecall.db").exists()
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[0] == "scheduler_started" and events[-1] == "scheduler_stopped"
