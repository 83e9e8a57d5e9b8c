"""Crash drills (issue 6): the dialer killed with SIGKILL at random points, in real processes.

After every restart the run must finish with the same result for every person
as an uninterrupted run, no attempt placed twice and no acknowledgement lost.
The simulated trunk's outcomes are derivable (seed, number, week, attempt),
so the uninterrupted run is the reference.
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

from safecall.settings import load_instance
from safecall.store import Attempt, Database, MemberState, Person, RunMember
from safecall.synthetic import write_roster

CLI = str(Path(__file__).resolve().parents[1] / "cli.py")
NOW = "2026-11-23T08:00+09:00"
DONGS = ["청운효자동", "사직동", "삼청동", "부암동", "평창동", "무악동", "교남동", "가회동", "이화동"]


def safecall(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, CLI, "--config", str(root), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def drill_instance(tmp_path: Path, people: int) -> Path:
    root = tmp_path / "office"
    assert subprocess.run([sys.executable, CLI, "init", str(root)], capture_output=True).returncode == 0
    trunks = root / "config" / "trunks.toml"
    trunks.write_text(trunks.read_text(encoding="utf-8").replace("calls_per_second = 5", 'calls_per_second = 50\nplaced_log = "placed.jsonl"'),
                      encoding="utf-8")
    write_roster(root / "roster.csv", people, DONGS, seed=3)
    assert safecall(root, "recipients", "import", str(root / "roster.csv")).wait() == 0
    return root


def final_states(root: Path) -> dict[str, str]:
    db = Database(load_instance(root, {}).database_url())
    with db.session() as session:
        rows = session.exec(select(Person.person_key, RunMember.state).join(RunMember, RunMember.person_id == Person.id))
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


def drill(root: Path, folder: Path) -> subprocess.Popen:
    """`safecall drill` on a kept copy of the instance's data: a folder that holds one is resumed."""
    return safecall(root, "drill", "weekly-safe-call", "--now", NOW, "--dir", str(folder))


def crash_drill(tmp_path: Path, people: int, kills: int, seed: int) -> dict:
    office = drill_instance(tmp_path, people)
    reference = tmp_path / "reference"
    assert drill(office, reference).wait() == 0
    calls = len((reference / "placed.jsonl").read_text().splitlines())

    rng = random.Random(seed)
    killed = 0
    root = tmp_path / "drill"
    placed_log = root / "placed.jsonl"
    while True:
        process = drill(office, root)
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
    expected, got = final_states(reference), final_states(root)
    assert set(got) == set(expected)
    lost = [key for key, state in expected.items() if state == MemberState.ACKNOWLEDGED and got[key] != state]
    assert not lost, f"acknowledgements lost: {lost[:5]}"
    assert got == expected
    assert all(state in MemberState.FINAL for state in got.values())

    placed = [json.loads(line) for line in (root / "placed.jsonl").read_text().splitlines()]
    tokens = [p["token"] for p in placed]
    assert len(tokens) == len(set(tokens)), "an attempt was placed twice"
    db = Database(load_instance(root, {}).database_url())
    with db.session() as session:
        attempts = list(session.exec(select(Attempt)))
        members = {m.id: m for m in session.exec(select(RunMember))}
    db.dispose()
    assert set(tokens) <= {a.token for a in attempts}
    for attempt in attempts:
        if attempt.digit == "1":
            assert members[attempt.member_id].state == MemberState.ACKNOWLEDGED
    return {"people": people, "kills": killed, "attempts": len(attempts), "placed_calls": len(tokens),
            "processes": len({p["pid"] for p in placed})}


def test_crash_drill_quick(tmp_path):
    result = crash_drill(tmp_path, people=200, kills=5, seed=11)
    # Every killed process was dialling when it died; the last one may find only calls to recover.
    assert result["processes"] >= 5


@pytest.mark.soak
def test_crash_drill_soak(tmp_path):
    result = crash_drill(tmp_path, people=1000, kills=25, seed=2026)
    print(json.dumps(result))
    assert result["processes"] >= 25
