"""Crash drills (issue 6): the dialer killed with SIGKILL at random points, in real processes.

The simulated trunk keeps the switch's own record beside the run (placed.jsonl: every call placed;
placed.keys.jsonl: every key the person was thanked for), and each call's course is derivable from
(seed, number, week, attempt). So after the kills the drill checks every attempt against the truth:
no call placed twice, no thanked key missing from the database (lost), no key stored that the call
never had (phantom), no attempt that was never placed counted as anything but unknown, every person
final. A mutation check shows the drill fails for an engine that holds keys in memory or invents them.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from safecall.clock import SystemClock
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import FINAL_STATES, Attempt, CampaignRun, Database, Disposition, MemberState, Person, RunMember
from safecall.synthetic import write_roster
from safecall.telephony.base import CallRequest

CLI = [sys.executable, "-m", "safecall"]  # the installed command, as a process
NOW = "2026-11-23T08:00+09:00"
DONGS = ["청운효자동", "사직동", "삼청동", "부암동", "평창동", "무악동", "교남동", "가회동", "이화동"]


MUTANT_CLI = str(Path(__file__).resolve().parent / "drill_mutants.py")


def safecall(root: Path, *args: str, mutant: str | None = None) -> subprocess.Popen:
    command = [sys.executable, MUTANT_CLI, mutant, "--"] if mutant else CLI
    return subprocess.Popen(
        [*command, "--config", str(root), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def drill_instance(tmp_path: Path, people: int) -> Path:
    root = tmp_path / "office"
    assert subprocess.run([*CLI, "init", str(root)], capture_output=True).returncode == 0
    trunks = root / "config" / "trunks.toml"
    trunks.write_text(
        trunks.read_text(encoding="utf-8").replace(
            "calls_per_second = 5", 'calls_per_second = 50\nplaced_log = "placed.jsonl"'
        ),
        encoding="utf-8",
    )
    write_roster(root / "roster.csv", people, DONGS, seed=3)
    assert safecall(root, "recipients", "import", str(root / "roster.csv")).wait() == 0
    return root


def final_states(root: Path) -> dict[str, str]:
    db = Database(load_instance(root, {}).database_url())
    with db.session() as session:
        rows = session.exec(
            select(Person.person_key, RunMember.state).join(RunMember, RunMember.person_id == Person.id)
        )
        states = {}
        for key, state in rows:
            assert key not in states, f"{key} is in the run twice"
            states[key] = state
    db.dispose()
    return states


def wait_until_placed(process: subprocess.Popen, placed_log: Path, calls: int, timeout: float = 60) -> bool:
    """True once `process` has placed `calls` calls; False if it ended first."""
    marker = f'"pid": {process.pid}}}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if placed_log.exists() and placed_log.read_text().count(marker) >= calls:
            return True
        time.sleep(0.005)
    return False


def drill(root: Path, folder: Path, mutant: str | None = None) -> subprocess.Popen:
    """`safecall drill` on a kept copy of the instance's data: a folder that holds one is resumed."""
    return safecall(root, "drill", "weekly-safe-call", "--now", NOW, "--dir", str(folder), mutant=mutant)


def crash_drill(tmp_path: Path, people: int, kills: int, seed: int, mutant: str | None = None) -> dict:
    office = drill_instance(tmp_path, people)
    reference = tmp_path / "reference"
    assert drill(office, reference).wait() == 0
    calls = len((reference / "placed.jsonl").read_text().splitlines())

    rng = random.Random(seed)
    killed = 0
    root = tmp_path / "drill"
    placed_log = root / "placed.jsonl"
    while True:
        process = drill(office, root, mutant)
        # Killed at a random point after this process placed some calls: mid-campaign, never during start-up.
        # Counting calls, not seconds, keeps the drill the same however fast the engine is.
        if killed < kills and wait_until_placed(process, placed_log, rng.randint(1, calls // (kills + 2))):
            process.kill()
            process.wait()
            killed += 1
            continue
        process.wait(timeout=600)
        assert process.returncode == 0, process.stderr.read()
        break
    assert killed == kills, f"the run finished after {killed} kills; make it longer"
    assert final_states(office) == {}  # the drills ran on copies: the office's own data has no run
    return check_against_the_switch(root) | {"people": people, "kills": killed}


def check_against_the_switch(root: Path) -> dict:
    """Every attempt in the drill's database against the switch's own record and each call's derivable course."""
    instance = load_instance(root, {})
    placed = [json.loads(line) for line in (root / "placed.jsonl").read_text().splitlines()]
    tokens = [p["token"] for p in placed]
    assert len(tokens) == len(set(tokens)), "an attempt was placed twice"
    thanked = {
        entry["token"]: entry["thanked"]
        for entry in map(json.loads, (root / "placed.keys.jsonl").read_text().splitlines())
    }
    services = Services.open(instance, SystemClock())
    try:
        trunk = services.build_trunk("simulated")
        campaign = services.campaign_rules("weekly-safe-call")
        with services.db.session() as session:
            attempts = list(session.exec(select(Attempt)))
            members = {m.id: m for m in session.exec(select(RunMember))}
            week = session.exec(select(CampaignRun)).one().week_start
    finally:
        services.close()
    assert set(tokens) <= {a.token for a in attempts}
    lost, phantom, never_placed = [], [], []
    for attempt in attempts:
        if attempt.token in thanked and attempt.digit != thanked[attempt.token]:
            lost.append(attempt.id)
        if attempt.token not in tokens:
            if attempt.digit is not None or attempt.disposition != Disposition.UNKNOWN:
                never_placed.append(attempt.id)
            continue
        request = CallRequest(
            token=attempt.token,
            number=attempt.phone,
            attempt_number=attempt.number,
            week=week,
            placed_at=attempt.placed_at,
            ring_timeout=campaign.definition.call.ring_timeout_seconds,
            max_call_seconds=campaign.definition.call.max_call_seconds,
            flow=campaign.flow,
        )
        keys = [extra["digit"] for *_, kind, extra in trunk.plan(request) if kind == "key"]
        if attempt.digit is not None and [attempt.digit] != keys:
            phantom.append(attempt.id)
    assert not lost, f"acknowledgements the person was thanked for are missing: attempts {lost[:5]}"
    assert not phantom, f"keys stored that the call never had: attempts {phantom[:5]}"
    assert not never_placed, f"attempts never placed but counted: {never_placed[:5]}"
    assert all(m.state in FINAL_STATES for m in members.values())
    for attempt in attempts:
        if attempt.digit == "1":
            assert members[attempt.member_id].state == MemberState.ACKNOWLEDGED
    return {
        "attempts": len(attempts),
        "placed_calls": len(tokens),
        "thanked": len(thanked),
        "processes": len({p["pid"] for p in placed}),
    }


def test_crash_drill_quick(tmp_path):
    result = crash_drill(tmp_path, people=200, kills=5, seed=11)
    # Every killed process was dialling when it died; the last one may find only calls to recover.
    assert result["processes"] >= 5


@pytest.mark.parametrize("mutant, fault", [("hold_keys", "missing"), ("invent_keys", "never had")])
def test_the_crash_drill_catches_an_engine_that_loses_or_invents_a_keypress(tmp_path, mutant, fault):
    with pytest.raises(AssertionError, match=fault):
        crash_drill(tmp_path, people=200, kills=5, seed=11, mutant=mutant)


@pytest.mark.soak
def test_crash_drill_soak(tmp_path):
    result = crash_drill(tmp_path, people=1000, kills=25, seed=2026)
    print(json.dumps(result))
    assert result["processes"] >= 25
