"""Rules fixed per run: an edited campaign or IVR flow applies from the next run, or to open runs by
`safecall campaign apply`; never half-way through a run by accident."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from conftest import MONDAY_MORNING, NEXT_MONDAY_MORNING, person_row, scripted_trunks, write_csv
from live import always_open
from sqlalchemy import text as sql
from sqlmodel import select

from safecall.audit import audit_events
from safecall.runrules import apply_rules
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, RunMember

# P never answers; R answers its 2nd call, Q its 3rd, pressing 1 (what 1 means is the IVR flow's).
P, Q, R = "+821001290001", "+821001290002", "+821001290003"
SCRIPTS = {P: ["no_answer"], Q: ["no_answer", "no_answer", "ack"], R: ["no_answer", "ack"]}
ONE_ACKNOWLEDGES = (
    '1 = { outcome = "acknowledged", closing = "thanks_well" }',
    '2 = { outcome = "help_requested", closing = "thanks_help" }',
)
ONE_ASKS_FOR_HELP = (
    '1 = { outcome = "help_requested", closing = "thanks_help" }',
    '2 = { outcome = "acknowledged", closing = "thanks_well" }',
)


def attempts_of(cli) -> dict[str, list[Attempt]]:
    db = cli.db()
    try:
        with db.session() as session:
            numbers = {
                number: [a for a in session.exec(select(Attempt).order_by(Attempt.number)) if a.phone == number]
                for number in SCRIPTS
            }
    finally:
        db.dispose()
    return numbers


def wait_for(condition, what: str, process: subprocess.Popen, seconds: float = 90) -> None:
    """Poll the database until `condition()`; the bound only stops a hung test, nothing is timed."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the scheduler exited while waiting for {what}:\n{process.stderr.read()}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.05)


def done(attempts: list[Attempt], count: int) -> bool:
    return len(attempts) >= count and all(a.status == "done" for a in attempts[:count])


def edit_flow(cli, old: tuple[str, str], new: tuple[str, str]) -> None:
    path = cli.root / "ivr" / "safe-call.toml"
    text = path.read_text(encoding="utf-8")
    for before, after in zip(old, new, strict=True):
        assert before in text
        text = text.replace(before, after)
    path.write_text(text, encoding="utf-8")


def test_an_edit_while_the_scheduler_dials_waits_for_the_next_run_or_for_campaign_apply(cli, tmp_path):
    cli.set_trunks(scripted_trunks(SCRIPTS, channels=4, cps=2))
    always_open(cli)
    cli.edit_campaign('spacing = ["0m"]', 'spacing = ["1h"]')
    # A call is written off only 1,890 virtual seconds (6 real ones) after it was placed: no stall of a busy
    # machine makes a call the switch ended look lost.
    cli.edit_campaign("max_call_seconds = 180", "max_call_seconds = 1800")
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [person_row(name, "010-0129-" + number[-4:]) for name, number in zip("PQR", SCRIPTS, strict=True)],
            )
        ),
    )
    clocked = str(Path(__file__).parent / "clocked_cli.py")
    # One virtual hour is 12 real seconds: the edits below land well inside the hour between calls.
    process = subprocess.Popen(
        [
            sys.executable,
            clocked,
            "--at",
            MONDAY_MORNING.isoformat(),
            "--speed",
            "300",
            "--",
            "--config",
            str(cli.root),
            "scheduler",
            "run",
            "--interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: all(done(a, 1) for a in attempts_of(cli).values()), "first calls", process)
        # The office shortens the spacing and changes what 1 means, while the run is open and being dialled.
        cli.edit_campaign('spacing = ["1h"]', 'spacing = ["30m"]')
        edit_flow(cli, ONE_ACKNOWLEDGES, ONE_ASKS_FOR_HELP)
        note = cli("campaign", "status").output
        assert (
            "changed after run 1 was launched (campaign.retry.spacing, flow.digits.1.closing, flow.digits.1.outcome, "
            in note
        )
        assert "'safecall campaign apply weekly-safe-call'" in note
        cli.use_locale("ko_KR.UTF-8")
        assert (
            "1번 실행을 시작한 뒤 weekly-safe-call 캠페인 파일이 바뀌었습니다(campaign.retry.spacing"
            in cli("campaign", "status").output
        )
        cli.environ["SAFECALL_LANG"] = "en"

        wait_for(lambda: done(attempts_of(cli)[P], 2), "P's second call", process)
        calls = attempts_of(cli)
        # The open run kept its rules: R's 1 still acknowledges.
        assert calls[R][1].disposition == "acknowledged"

        applied = cli("campaign", "apply", "weekly-safe-call").output
        assert (
            "Run 1 of campaign weekly-safe-call now follows the edited rules (version 2; changed: "
            "campaign.retry.spacing" in applied
        )
        assert "rules_note" in cli("campaign", "status", "--format", "json").output
        assert json.loads(cli("campaign", "status", "--format", "json").output)["rules_note"] is None

        db = cli.db()

        def run_closed() -> bool:
            with db.engine.connect() as connection:
                return connection.execute(sql("SELECT status FROM campaignrun")).scalar() == "closed"

        wait_for(run_closed, "the run closing", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    finally:
        process.kill()
    calls = attempts_of(cli)
    # P's third call was planned at the second's end, after the edit and before the apply: an hour on, the run's
    # own spacing, not the file's 30 minutes; the fourth after the apply: 30 minutes.
    assert [a.disposition for a in calls[P]] == ["no_answer"] * 4
    assert timedelta(hours=1) <= calls[P][2].placed_at - calls[P][1].ended_at < timedelta(hours=1, minutes=10)
    assert timedelta(minutes=30) <= calls[P][3].placed_at - calls[P][2].ended_at < timedelta(minutes=40)
    assert calls[Q][2].disposition == "help_requested"  # pressed 1 after the apply: the edited flow
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [e["version"] for e in events if e["event"] == "run_rules_followed"] in ([], [2])
    trail = audit_events(db, action="campaign.apply")
    assert [(e.subject, e.detail.split(" changed=")[0]) for e in trail] == [
        ("run 1", "campaign=weekly-safe-call version=2")
    ]
    assert "campaign.retry.spacing" in trail[0].detail and "flow.digits.1.outcome" in trail[0].detail

    # The next week's run is launched with the edited rules.
    cli.clock.set(NEXT_MONDAY_MORNING)
    cli("campaign", "launch", "weekly-safe-call")
    services = Services.open(load_instance(cli.root, cli.environ), cli.clock)
    with db.session() as session:
        week2 = session.exec(select(CampaignRun).where(CampaignRun.week_start == NEXT_MONDAY_MORNING.date())).one()
        states = {m.person_id: m.state for m in session.exec(select(RunMember).where(RunMember.run_id == week2.id))}
    assert week2.rules == services.rules_snapshot("weekly-safe-call") and week2.rules_version == 1
    assert json.loads(week2.rules)["campaign"]["retry"]["spacing"] == ["30m"]
    second = {number: [a for a in attempts if a.run_id == week2.id] for number, attempts in attempts_of(cli).items()}
    assert timedelta(minutes=30) <= second[P][1].placed_at - second[P][0].ended_at < timedelta(minutes=31)
    assert second[R][1].disposition == "help_requested" and sorted(states.values()) == [
        "help_requested",
        "help_requested",
        "unreachable",
    ]
    services.close()
    db.dispose()


def test_a_run_keeps_the_files_rules_from_the_upgrade_that_gives_it_a_snapshot(cli, tmp_path):
    from alembic import command

    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("P", "010-0129-0001")])))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    db = cli.db()
    config = db._alembic_config()
    with db.engine.connect() as connection:  # a database of before runs kept their rules, with an open run
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")  # SQLite drops a column by copying the table
        connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
    cli.edit_campaign('spacing = ["1h", "3h", "next_day"]', 'spacing = ["2h"]')
    assert "0011" in cli("db", "upgrade").output
    services = Services.open(load_instance(cli.root, cli.environ), cli.clock)
    with db.session() as session:
        run = session.exec(select(CampaignRun)).one()
    assert run.rules == services.rules_snapshot("weekly-safe-call") and run.rules_version == 1
    assert json.loads(run.rules)["campaign"]["retry"]["spacing"] == ["2h"]  # the files' at the upgrade
    assert "changed after" not in cli("campaign", "status").output
    services.close()
    db.dispose()


def test_a_dialer_follows_an_apply_made_while_it_dials_the_run(cli, clock, tmp_path, caplog):
    """In one dialling session (no restart, no new take of the run): the settling after the apply uses the new rules."""
    cli.set_trunks(scripted_trunks({P: ["no_answer"]}, channels=4, cps=2))
    always_open(cli)
    cli.edit_campaign('spacing = ["0m"]', 'spacing = ["2h"]')
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("P", "010-0129-0001")])))
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    run, _ = launch_run(
        services.db,
        services.campaign("weekly-safe-call"),
        services.campaign("weekly-safe-call").calendar(services.instance),
        now=clock.now(),
        rules=services.rules_snapshot("weekly-safe-call"),
    )
    applied_at = []

    def apply_once_between_calls() -> bool:  # the dialer asks at every wake-up: the moment is the clock's, not a race
        if not applied_at and clock.now() >= MONDAY_MORNING + timedelta(hours=1):
            cli.edit_campaign('spacing = ["2h"]', 'spacing = ["30m"]')
            applied_at.append(
                apply_rules(
                    services.db, "weekly-safe-call", services.rules_snapshot("weekly-safe-call"), now=clock.now()
                )
            )
        return False

    caplog.set_level(logging.INFO, logger="safecall")
    services.dialer(services.campaign("weekly-safe-call")).run(run.id, stop_requested=apply_once_between_calls)
    services.close()
    calls = attempts_of(cli)[P]
    assert [len(a) for a in applied_at] == [1] and len(calls) == 4
    assert calls[1].placed_at - calls[0].ended_at == timedelta(hours=2)  # planned before the apply
    assert calls[2].placed_at - calls[1].ended_at == timedelta(minutes=30)
    assert calls[3].placed_at - calls[2].ended_at == timedelta(minutes=30)
    assert f'"event": "run_rules_followed", "run": {run.id}' in caplog.text
