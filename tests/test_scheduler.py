"""Unattended operation (issue 5): the scheduler across restarts, daily delivery over real SMTP, escalation."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import holidays
import pytest
from aiosmtpd.controller import Controller
from conftest import MONDAY_MORNING, SEOUL, person_row, scripted_trunks, write_csv
from live import free_port
from solapi_fake import API_KEY, API_SECRET, sms_table
from sqlmodel import select

from safecall.campaign import CampaignDef
from safecall.domain import OutboxKind
from safecall.notify import build_mailer, build_sms
from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, OutboxMessage, Person, RunMember, VisitTask
from safecall.workers import ValidCampaigns


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
    text = text.replace(
        'email = "team1@example.org"', 'email = "team1@example.org"\nofficer_email = "officer1@example.org"'
    )
    text = text.replace(
        'outbox = "outbox"',
        f"""outbox = "outbox"

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
{sms}""",
    )
    settings.write_text(text, encoding="utf-8")
    cli.set_trunks(
        scripted_trunks({"+821001230001": ["ack"], "+821001230002": ["no_answer"], "+821001230003": ["help"]})
    )


def roster(cli, tmp_path):
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("응답", "010-0123-0001"),
                    person_row("무응답", "010-0123-0002", guardian="보호자", guardian_phone="010-0999-0002"),
                    person_row("도움", "010-0123-0003", guardian="보호자2", guardian_phone="010-0999-0003"),
                ],
            )
        ),
    )


def scheduler_for(cli) -> Scheduler:
    services = Services.open(load_instance(cli.root, {}), cli.clock)
    mailer = build_mailer(services.instance)
    return Scheduler(services, mailer, build_sms(services.instance), threaded=False)


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


def members_of(cli, run_id: int) -> dict[str, str]:
    with cli.db().session() as session:
        rows = session.exec(
            select(Person.phone, RunMember.state)
            .join(RunMember, RunMember.person_id == Person.id)
            .where(RunMember.run_id == run_id)
        )
        return dict(rows.all())


def first_calls(cli, run_id: int) -> set:
    """The local days on which the run placed its first attempts."""
    with cli.db().session() as session:
        placed = session.exec(select(Attempt.placed_at).where(Attempt.run_id == run_id, Attempt.number == 1)).all()
    return {at.astimezone(SEOUL).date() for at in placed}


def tick_through(scheduler, cli, start: datetime, end: datetime, step: timedelta = timedelta(hours=1)) -> None:
    moment = start
    while moment <= end:
        cli.clock.set(moment)
        scheduler.tick()
        moment += step


def tick_days(scheduler, cli, first: date, last: date, hours=(9, 10, 11, 14)) -> None:
    """A few ticks a day, where the slot and the retries (1h, 3h, next day) fall:
    enough, and far cheaper than every 30 s."""
    day = first
    while day <= last:
        for hour in hours:
            cli.clock.set(datetime(day.year, day.month, day.day, hour, tzinfo=SEOUL))
            scheduler.tick()
        day += timedelta(days=1)


def test_a_week_whose_window_passed_is_called_on_the_next_calling_day_beside_next_weeks_run(cli, tmp_path, smtp):
    configure(cli, smtp.port)
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    cli.clock.set(datetime(2026, 11, 27, 19, 0, tzinfo=SEOUL))  # Friday evening: the whole calling week was missed
    scheduler.tick()
    [late] = runs(cli)
    assert late.week_start.isoformat() == "2026-11-23"
    assert late.first_call_at.astimezone(SEOUL) == datetime(2026, 11, 30, 9, 0, tzinfo=SEOUL)  # Monday, next week
    cli.clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=SEOUL))
    scheduler.tick()
    assert members_of(cli, late.id) == {
        "+821001230001": "acknowledged",
        "+821001230002": "pending",
        "+821001230003": "help_requested",
    }
    # 10:00: next week's own slot. Its run opens beside the late one, which keeps the person it is still retrying.
    cli.clock.set(datetime(2026, 11, 30, 10, 0, tzinfo=SEOUL))
    scheduler.tick()
    late, this_week = runs(cli)
    assert this_week.week_start.isoformat() == "2026-11-30" and late.status == "open"
    assert set(members_of(cli, this_week.id)) == {"+821001230001", "+821001230003"}
    assert first_calls(cli, late.id) == first_calls(cli, this_week.id) == {datetime(2026, 11, 30).date()}
    tick_through(
        scheduler, cli, datetime(2026, 11, 30, 11, 0, tzinfo=SEOUL), datetime(2026, 12, 2, 12, 0, tzinfo=SEOUL)
    )
    assert [run.status for run in runs(cli)] == ["closed", "closed"]
    with cli.db().session() as session:
        late_attempts = session.exec(
            select(Attempt).where(Attempt.run_id == late.id, Attempt.phone == "+821001230002")
        ).all()
        assert (
            len(late_attempts) == 4
            and not session.exec(
                select(Attempt).where(Attempt.run_id == this_week.id, Attempt.phone == "+821001230002")
            ).first()
        )


HOLIDAY_WEEKS = [
    ("fri", datetime(2026, 12, 25, 10, 0), "2026-12-21", datetime(2026, 12, 28, 9, 0)),  # Christmas
    ("fri", datetime(2027, 1, 1, 10, 0), "2026-12-28", datetime(2027, 1, 4, 9, 0)),  # New Year's Day, the week after
    ("thu", datetime(2026, 9, 24, 10, 0), "2026-09-21", datetime(2026, 9, 28, 9, 0)),  # Chuseok (Thu-Sat)
]


@pytest.mark.parametrize(
    "clock, weekday, slot, week, first_call",
    [(slot.replace(tzinfo=SEOUL) - timedelta(hours=1), *case) for case in HOLIDAY_WEEKS for slot in [case[1]]],
    indirect=["clock"],
)
def test_a_holiday_week_gets_its_first_calls_on_the_next_calling_day(
    cli, tmp_path, smtp, weekday, slot, week, first_call
):
    configure(cli, smtp.port)
    cli.edit_campaign('weekday = "mon"', f'weekday = "{weekday}"')
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    tick_through(
        scheduler,
        cli,
        slot.replace(tzinfo=SEOUL) - timedelta(hours=1),
        first_call.replace(tzinfo=SEOUL) + timedelta(hours=2),
    )
    run = next(run for run in runs(cli) if run.week_start.isoformat() == week)
    assert run.launched_at.astimezone(SEOUL) == slot.replace(tzinfo=SEOUL)
    assert run.first_call_at.astimezone(SEOUL) == first_call.replace(tzinfo=SEOUL)
    assert first_calls(cli, run.id) == {first_call.date()}
    assert len(members_of(cli, run.id)) == 3


def test_christmas_and_new_year_back_to_back_skip_no_week(cli, tmp_path, smtp):
    configure(cli, smtp.port)
    cli.edit_campaign('weekday = "mon"', 'weekday = "fri"')
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    tick_days(scheduler, cli, date(2026, 12, 24), date(2027, 1, 12))
    weeks = {run.week_start.isoformat(): run for run in runs(cli)}
    assert list(weeks) == ["2026-12-21", "2026-12-28", "2027-01-04"]
    assert [sorted(first_calls(cli, run.id)) for run in weeks.values()] == [
        [date(2026, 12, 28)],
        [date(2027, 1, 4)],
        [date(2027, 1, 8)],
    ]
    assert [(run.status, len(members_of(cli, run.id))) for run in weeks.values()] == [("closed", 3)] * 3


def test_a_week_missed_while_the_scheduler_was_down_is_caught_up(cli, tmp_path, smtp):
    configure(cli, smtp.port)
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    tick_through(
        scheduler, cli, datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL), datetime(2026, 11, 25, 10, 0, tzinfo=SEOUL)
    )
    # Down from Wednesday to the Monday after next, before its slot: the missed week is called at the opening.
    cli.clock.set(datetime(2026, 12, 7, 8, 30, tzinfo=SEOUL))
    scheduler.tick()

    def week_run():
        return [(run.week_start.isoformat(), run.first_call_at.astimezone(SEOUL)) for run in runs(cli)]

    assert week_run() == [
        ("2026-11-23", datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)),
        ("2026-11-30", datetime(2026, 12, 7, 9, 0, tzinfo=SEOUL)),
    ]
    tick_through(scheduler, cli, datetime(2026, 12, 7, 9, 0, tzinfo=SEOUL), datetime(2026, 12, 9, 10, 0, tzinfo=SEOUL))
    assert week_run()[2] == ("2026-12-07", datetime(2026, 12, 7, 10, 0, tzinfo=SEOUL))
    # Down again past a week and this week's slot: this week's run stands for both (they would call everyone at once).
    cli.clock.set(datetime(2026, 12, 22, 11, 0, tzinfo=SEOUL))
    scheduler.tick()
    assert [week for week, _ in week_run()] == ["2026-11-23", "2026-11-30", "2026-12-07", "2026-12-21"]


class ShutCalendar(CampaignDef):
    """A campaign whose calendar is shut for six weeks
    (nothing a valid file can say today, but the scheduler must cope)."""

    def calendar(self, instance):
        calendar = super().calendar(instance)
        shut = holidays.HolidayBase()
        shut.update({datetime(2026, 11, 23).date() + timedelta(days=n): "shut" for n in range(42)})
        return replace(calendar, holidays=shut)


def test_no_calling_day_tells_the_officer_once_and_logs_it_once(cli, tmp_path, smtp, caplog):
    smtp.start()
    configure(cli, smtp.port)
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    definition = scheduler.campaigns()["weekly-safe-call"]
    scheduler.campaigns = lambda: {"weekly-safe-call": ShutCalendar.model_validate(definition.model_dump())}
    caplog.set_level(logging.INFO, logger="safecall")
    tick_through(
        scheduler,
        cli,
        datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL),
        datetime(2026, 11, 23, 12, 0, tzinfo=SEOUL),
        step=timedelta(seconds=30),
    )
    assert runs(cli) == []
    [notice] = smtp.to("officer1@example.org")
    assert (
        "2026-11-23 주간 통화를 시작하지 못했습니다" in notice.get_content()
        and "campaigns/weekly-safe-call.toml" in notice.get_content()
    )
    logged = [json.loads(r.getMessage()) for r in caplog.records if '"no_calling_day"' in r.getMessage()]
    # Every team's officer (or the team's address where no officer is named), as the campaign targets every team.
    assert len(logged) == 1 and logged[0]["officers_told"] == [
        "officer1@example.org",
        "team2@example.org",
        "team3@example.org",
    ]
    assert "no calling day within 28 days" in logged[0]["reason"]
    # A scheduler restarted says it once more in its log, but the officer is not e-mailed again.
    restarted = scheduler_for(cli)
    restarted.campaigns = scheduler.campaigns
    restarted.tick()
    assert len(smtp.to("officer1@example.org")) == 1


def solapi_settings(cli, base_url: str) -> str:
    """[sms] through SOLAPI, its key and secret in secret files (the scheduler reads no environment here)."""
    secrets = cli.root / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "solapi_key").write_text(API_KEY + "\n")
    (secrets / "solapi_secret").write_text(API_SECRET + "\n")
    return sms_table(
        base_url, f'{{ file = "{secrets / "solapi_key"}" }}', f'{{ file = "{secrets / "solapi_secret"}" }}'
    )


def week_then_morning(cli, tmp_path, smtp, solapi_url: str):
    configure(cli, smtp.port, sms=solapi_settings(cli, solapi_url))
    cli.edit_campaign("guardian_sms = false", "guardian_sms = true")
    roster(cli, tmp_path)
    scheduler = scheduler_for(cli)
    for half_hours in range(0, 48):  # Monday 10:00 to Tuesday 10:00
        cli.clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL) + timedelta(minutes=30 * half_hours))
        scheduler.tick()
    return scheduler


def test_morning_delivery_survives_an_smtp_failure_then_succeeds(cli, tmp_path, smtp, solapi):
    scheduler = week_then_morning(cli, tmp_path, smtp, solapi.base_url)  # SMTP is down all this time
    cli.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=SEOUL))
    scheduler.tick()
    with cli.db().session() as session:
        deliveries = list(
            session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.kind == OutboxKind.TEAM_LIST, OutboxMessage.day == datetime(2026, 11, 25).date()
                )
            )
        )
    visit_lists = {d.team: d for d in deliveries if d.list_kind == "visit"}
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
    # Counts and a link: the list itself is behind the web login (attachments are off by default).
    assert not list(team_mail.iter_attachments())
    assert "1명" in team_mail.get_content() and "http://127.0.0.1:8080/team/1%ED%8C%80" in team_mail.get_content()
    assert "무응답" not in team_mail.get_content()  # the person's name
    assert (
        len(smtp.to("team2@example.org", "2026-11-25")) == 1 and len(smtp.to("team3@example.org", "2026-11-25")) == 1
    )  # empty lists too
    # Earlier days' lists, held back (and backed off) while SMTP was down, go out within the hour; each once.
    cli.clock.set(datetime(2026, 11, 25, 9, 15, tzinfo=SEOUL))
    scheduler.tick()
    scheduler.tick()
    assert len(smtp.to("team1@example.org", "2026-11-24")) == 1 and len(smtp.to("team1@example.org", "2026-11-23")) == 1
    assert len(smtp.to("team1@example.org", "2026-11-25 방문")) == 1
    # The officer got the callback list and the same-day notice for the person who pressed 2.
    officer = smtp.to("officer1@example.org")
    assert any("도움 요청" in m["Subject"] for m in officer) and any(
        "도움을 요청" in m.get_content() for m in officer if not m.is_multipart()
    )
    # Guardians were texted through SOLAPI, once each, and the texts were delivered.
    texts = {m["to"]: m for r in solapi.requests for m in r["messages"]}
    assert len(texts) == sum(len(r["messages"]) for r in solapi.requests) == 2
    assert (
        texts["01009990002"]["text"]
        == "[안심콜] 무응답님이 안부 전화에 응답하지 않아 담당자가 방문합니다. 문의 02-2148-1234"
    )
    assert (
        texts["01009990003"]["text"]
        == "[안심콜] 도움님이 안부 전화로 도움을 요청해 오늘 연락드립니다. 문의 02-2148-1234"
    )
    with cli.db().session() as session:
        assert {n.status for n in session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))} == {
            "delivered"
        }
    assert "sent" in cli("visits", "deliveries", "--date", "2026-11-25").output
    # A list can be sent again by hand.
    cli("visits", "deliver", "--date", "2026-11-25")
    assert len(smtp.to("team1@example.org", "2026-11-25 방문")) == 2


def test_deliveries_that_keep_failing_are_reported_not_dropped(cli, tmp_path, smtp, solapi):
    # SOLAPI refuses every text (its SDK retries a refused connection with back-off, which only slows the test).
    solapi.send_failures.extend([(503, "service unavailable")] * 1000)
    scheduler = week_then_morning(cli, tmp_path, smtp, solapi.base_url)
    cli.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=SEOUL))
    for minutes in range(0, 600, 30):
        cli.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=SEOUL) + timedelta(minutes=minutes))
        scheduler.tick()
    result = cli("visits", "deliveries", "--date", "2026-11-25")
    assert "failed" in result.output and "were not delivered" in result.output
    with cli.db().session() as session:
        lists = session.exec(select(OutboxMessage).where(OutboxMessage.kind == OutboxKind.TEAM_LIST)).all()
        texts = session.exec(select(OutboxMessage).where(OutboxMessage.kind != OutboxKind.TEAM_LIST)).all()
        assert lists and texts and all(m.status == "failed" for m in lists + texts)


def test_visits_without_an_outcome_become_overdue_and_go_to_the_top(cli, tmp_path, smtp, solapi):
    smtp.start()
    scheduler = week_then_morning(cli, tmp_path, smtp, solapi.base_url)
    cli.clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=SEOUL))  # more than 48 h after the visit task appeared
    scheduler.tick()
    with cli.db().session() as session:
        [task] = session.exec(select(VisitTask).where(VisitTask.kind == "visit")).all()
    assert task.overdue
    assert any(
        "방문 결과 기록 기한 초과" in m.get_content() for m in smtp.to("officer1@example.org") if not m.is_multipart()
    )
    cli("visits", "list", "--date", "2026-11-27", "--format", "csv", "--output", str(tmp_path / "l.csv"))
    assert "예" in (tmp_path / "l.csv").read_text(encoding="utf-8-sig").splitlines()[1].split(",")[3]


def terminate_when(process: subprocess.Popen, ready, wait: float, finish: float) -> str:
    """SIGTERM once `ready()` holds (or after `wait` seconds); what the process wrote to stderr."""
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not ready():
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        return process.communicate(timeout=finish)[1]
    finally:
        process.kill()


def terminate_after_event(process: subprocess.Popen, event: str, wait: float, finish: float) -> str:
    """SIGTERM once the process has logged `event` (its signal handlers are in place by then: no race with start-up
    on a busy machine); what it wrote to stderr."""
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if f'"event": "{event}"' in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(wait), f"no {event} within {wait} s: {''.join(lines)}"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=finish)
        reader.join(finish)
        return "".join(lines)
    finally:
        process.kill()


def test_the_scheduler_process_stops_cleanly_on_sigterm(cli, tmp_path):
    env = {**os.environ, "SAFECALL_CONFIG": str(cli.root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "safecall", "scheduler", "run", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = terminate_after_event(process, "scheduler_started", wait=60, finish=20)
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[0] == "scheduler_started" and events[-1] == "scheduler_stopped"


def test_campaign_launch_ends_gracefully_on_sigterm_with_no_call_left_open(cli, tmp_path):
    from live import always_open

    cli.set_trunks(scripted_trunks({}, channels=4, cps=2).replace("seed = 1", 'seed = 1\nplaced_log = "placed.jsonl"'))
    always_open(cli)
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [person_row(f"사람{i}", f"010-0128-{i:04d}", born=f"19{40 + i}-03-01") for i in range(30)],
            )
        ),
    )
    clocked = str(Path(__file__).parent / "clocked_cli.py")
    process = subprocess.Popen(
        [
            sys.executable,
            clocked,
            "--at",
            MONDAY_MORNING.isoformat(),
            "--speed",
            "20",
            "--",
            "--config",
            str(cli.root),
            "campaign",
            "launch",
            "weekly-safe-call",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    placed_log = cli.root / "placed.jsonl"
    err = terminate_when(process, lambda: placed_log.exists() and placed_log.read_text().count("\n") >= 6, 60, 120)
    assert process.returncode == 0, err
    with cli.db().session() as session:
        attempts = list(session.exec(select(Attempt)))
        run = session.exec(select(CampaignRun)).one()
    assert 6 <= len(attempts) < 30 and run.status == "open"  # stopped early; `campaign run` resumes it
    assert all(a.status == "done" and a.ended_at for a in attempts), "a call was left open"
    assert len(placed_log.read_text().splitlines()) == len(attempts)  # every attempt written was placed and ended


def test_a_worker_reads_the_campaigns_again_only_when_a_file_changes(cli, clock, caplog):
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    campaigns = ValidCampaigns(services)
    first = campaigns()
    assert list(first) == ["weekly-safe-call"]
    assert campaigns() is first  # nothing changed: the same answer, no file parsed again

    cli.edit_campaign('name = "weekly-safe-call"', 'name = "renamed"')
    with caplog.at_level(logging.ERROR, logger="safecall.worker"):
        assert campaigns() == {}  # an edit that breaks it takes it out at once
        assert campaigns() == {}
    assert (
        sum("campaign_invalid" in record.getMessage() for record in caplog.records) == 1
    )  # said once, not at every wake

    cli.edit_campaign('name = "renamed"', 'name = "weekly-safe-call"')
    (cli.root / "ivr" / "extra.toml").write_text(
        (cli.root / "ivr" / "safe-call.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert list(campaigns()) == ["weekly-safe-call"]
    services.close()
