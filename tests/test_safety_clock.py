"""The safety clock (issue 30, item 6): the wait from a person's last unanswered call, or their request for help, to
an outcome recorded by a human; its ladder over real SMTP and the SOLAPI fake; its report and its drill figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select
from test_drills import set_up as drill_set_up
from test_scheduler import scheduler_for, smtp, week_then_morning  # noqa: F401  (smtp is a fixture)
from test_web_browser import browser  # noqa: F401  (a fixture)

from safecall.safety_clock import clocks, percentile, reached_rung, summarise
from safecall.settings import SafetyClockSettings, Settings, load_instance
from safecall.store import AuditEvent, VisitTask


def with_lead(cli) -> None:
    settings = cli.root / "config" / "safecall.toml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(
        text.replace(
            'officer_email = "officer1@example.org"',
            'officer_email = "officer1@example.org"\nlead_email = "lead1@example.org"',
            1,
        ),
        encoding="utf-8",
    )


def rungs_taken(cli, task_id: int) -> list[str]:
    with cli.db().session() as session:
        return [
            e.action.removeprefix("safety_clock.")
            for e in session.exec(
                select(AuditEvent).where(
                    AuditEvent.subject == f"task {task_id}", AuditEvent.action.startswith("safety_clock.")
                )
            )
        ]


def bodies(smtp, address: str) -> list[str]:
    return [m.get_content() for m in smtp.to(address) if not m.is_multipart()]


def test_the_ladder_climbs_once_per_rung_and_stops_when_a_human_records(cli, tmp_path, smtp, solapi):
    smtp.start()
    scheduler = week_then_morning(cli, tmp_path, smtp, solapi.base_url)  # Monday 10:00 to Tuesday 10:00
    with_lead(cli)
    scheduler = scheduler_for(cli)  # reads the settings again
    settings = load_instance(cli.root, {}).settings
    [visit] = [w for w in clocks(cli.db(), settings, now=cli.clock.now()) if w.kind == "visit"]
    with cli.db().session() as session:
        task = session.get(VisitTask, visit.task_id)
    # The clock of the visit started at the last unanswered call, before the task itself appeared.
    assert visit.started_at <= task.created_at and visit.stopped_at is None

    def at(hours: float):
        cli.clock.set(visit.started_at + timedelta(hours=hours))
        scheduler.tick()
        return rungs_taken(cli, visit.task_id)

    assert at(3.5) == []
    assert at(4.5) == ["guardian"]  # the guardian text (one per person and week, the campaign's own)
    with cli.db().session() as session:
        [rung] = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "safety_clock.guardian", AuditEvent.subject == f"task {visit.task_id}"
            )
        ).all()
    assert "guardian text queued" in rung.detail and rung.actor == "safecall"
    assert at(8.5) == ["guardian", "officer"]
    officer_mails = [
        b for b in bodies(smtp, "officer1@example.org") if f"과제 {visit.task_id} " in b and "확인 대기 시간" in b
    ]
    assert len(officer_mails) == 1 and "무응답" not in officer_mails[0] and "010" not in officer_mails[0]
    assert at(24.5) == ["guardian", "officer", "team_lead"]
    assert any(f"과제 {visit.task_id} " in b and "팀장" in b for b in bodies(smtp, "lead1@example.org"))
    assert at(48.5) == ["guardian", "officer", "team_lead", "safety_check"]
    recommended = [
        b
        for b in bodies(smtp, "lead1@example.org") + bodies(smtp, "officer1@example.org")
        if "119/112 안전 확인 요청 검토" in b and f"과제 {visit.task_id} (" in b
    ]
    assert len(recommended) == 2 and all("판단해 주세요" in b for b in recommended)  # a person decides
    # Later ticks and a restarted scheduler repeat nothing.
    mails = len(smtp.inbox.messages)
    assert at(60) == ["guardian", "officer", "team_lead", "safety_check"]
    scheduler = scheduler_for(cli)
    assert at(61) == ["guardian", "officer", "team_lead", "safety_check"] and len(smtp.inbox.messages) == mails
    # A human records the outcome: the clock stops at that moment.
    cli("visits", "record", str(visit.task_id), "--outcome", "safe")
    [done] = [
        w for w in clocks(cli.db(), settings, now=cli.clock.now() + timedelta(days=3)) if w.task_id == visit.task_id
    ]
    assert done.stopped_at == cli.clock.now() and done.elapsed == timedelta(hours=61)


def test_a_not_home_visit_keeps_the_clock_running(cli, tmp_path, smtp, solapi):
    week_then_morning(cli, tmp_path, smtp, solapi.base_url)
    settings = load_instance(cli.root, {}).settings
    [visit] = [w for w in clocks(cli.db(), settings, now=cli.clock.now()) if w.kind == "visit"]
    cli("visits", "record", str(visit.task_id), "--outcome", "not_home")
    later = cli.clock.now() + timedelta(hours=5)
    [still] = [w for w in clocks(cli.db(), settings, now=later) if w.task_id == visit.task_id]
    assert still.stopped_at is None and still.elapsed == later - visit.started_at


def test_a_help_request_starts_the_clock_when_the_key_was_pressed(cli, tmp_path, smtp, solapi):
    week_then_morning(cli, tmp_path, smtp, solapi.base_url)
    settings = load_instance(cli.root, {}).settings
    [callback] = [w for w in clocks(cli.db(), settings, now=cli.clock.now()) if w.kind == "callback"]
    from safecall.store import Attempt

    with cli.db().session() as session:
        [pressed] = session.exec(select(Attempt).where(Attempt.disposition == "help_requested")).all()
    assert callback.started_at == pressed.keyed_at


def test_report_safety_clock_prints_median_p95_and_the_longest_waits_in_korean(cli, tmp_path, smtp, solapi):
    week_then_morning(cli, tmp_path, smtp, solapi.base_url)
    settings = load_instance(cli.root, {}).settings
    waits = clocks(cli.db(), settings, now=cli.clock.now())
    summary = summarise(waits)
    cli.use_locale("ko_KR.UTF-8")
    output = cli("report", "safety-clock").output
    assert f"확인 대기 시간: 과제 {len(waits)}건" in output and "중앙값" in output and "p95" in output
    assert "무응답" in output and "도움" in output  # both still waiting, listed by name for the officer
    import json

    data = json.loads(cli("report", "safety-clock", "--format", "json").output)
    assert data["median_seconds"] == int(summary.median.total_seconds()) and data["waiting"] == 2
    assert [row["task"] for row in data["longest"]] == [w.task_id for w in summary.longest]
    assert data["longest"][0]["waited_seconds"] >= data["longest"][1]["waited_seconds"]


def test_percentile_and_rungs():
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95) == 10 and percentile([5], 0.95) == 5
    assert percentile(list(range(1, 101)), 0.95) == 95
    settings = Settings()
    assert reached_rung(timedelta(hours=3), settings) is None
    assert reached_rung(timedelta(hours=30), settings) == "team_lead"
    with pytest.raises(ValueError, match="in order"):
        SafetyClockSettings(officer_after_hours=50)


def test_a_drill_reports_the_safety_clocks_median_and_p95(cli, tmp_path):
    drill_set_up(cli, tmp_path)
    output = cli("drill", "weekly-safe-call", "--now", "2026-11-23T08:00+09:00").output
    assert "Safety clock at the drill's end, over 2 visit and call-back tasks: median" in output and "p95" in output


def test_the_officers_pages_show_the_clock_and_the_safety_check_recommendation(cli, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from test_web_browser import log_in
    from web_fixtures import make_app, office_with_a_week, served

    office_with_a_week(cli, tmp_path)
    settings = load_instance(cli.root, {}).settings
    [help_wait] = [w for w in clocks(cli.db(), settings, now=cli.clock.now()) if w.kind == "callback"]
    cli.clock.set(help_wait.started_at + timedelta(hours=50, minutes=7))
    with served(make_app(cli)) as base:
        log_in(browser, base, "officer")
        browser.get(f"{base}/callbacks")
        shown = browser.find_element(By.CSS_SELECTOR, f"#callback-{help_wait.task_id} .safety-clock")
        assert "확인 대기 시간: 2일 2시간 7분" in shown.text and "119/112 안전 확인 요청 검토" in shown.text
        mark = shown.find_element(By.CLASS_NAME, "safety-check-mark")
        assert mark.is_displayed() and "담당자가 판단해 주세요" in mark.text
        browser.get(f"{base}/task/{help_wait.task_id}")
        assert "확인 대기 시간: 2일 2시간 7분" in browser.find_element(By.CLASS_NAME, "safety-clock").text
        # Recorded by a human: the clock is gone from the task's page.
        cli("visits", "record", str(help_wait.task_id), "--outcome", "called_safe")
        browser.get(f"{base}/task/{help_wait.task_id}")
        assert browser.find_elements(By.CLASS_NAME, "safety-clock") == []
