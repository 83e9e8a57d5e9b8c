"""Scale-out (issue 7, part 3): four dialer workers, each on its own trunk, share one PostgreSQL database.

They are real processes running `safecall worker run` on a shared accelerated
clock. No attempt may be dialled twice, each trunk's channel limit must hold,
and every person must end in one final state, even when a worker is killed
for good in the middle of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from conftest import MONDAY_MORNING
from live import always_open
from sqlmodel import select

from safecall.store import FINAL_STATES, Attempt, CampaignRun, MemberState, RunMember, VisitTask
from safecall.synthetic import simulated_pbxs_toml, write_roster

pytestmark = pytest.mark.parametrize("database_backend", ["postgresql"], indirect=True)
CLOCKED_CLI = str(Path(__file__).with_name("clocked_cli.py"))  # workers in accelerated time, on one timeline
WORKERS = 4
CHANNELS = 3
SPEED = 100  # virtual seconds per real second


def start_worker(cli, database_url: str, index: int, anchor: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            CLOCKED_CLI,
            "--at",
            cli.clock.now().isoformat(),
            "--speed",
            str(SPEED),
            "--anchor",
            str(anchor),
            "--",
            "--config",
            str(cli.root),
            "worker",
            "run",
            "--trunk",
            f"pbx{index}",
            "--interval",
            "0.2",
            "--seconds",
            "240",
        ],
        env={**os.environ, "SAFECALL_DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_close(db, run_id: int, timeout: float, workers: list[subprocess.Popen]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(worker.poll() is None for worker in workers):
        with db.session() as session:
            if session.get(CampaignRun, run_id).status == "closed":
                return True
        time.sleep(0.3)
    return False


def stop_workers(workers: list[subprocess.Popen]) -> list[str]:
    """SIGTERM to the workers still running; what each wrote to stderr."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    return [worker.communicate(timeout=60)[1] for worker in workers]


def max_concurrent(attempts: list[Attempt]) -> int:
    edges = sorted(
        [(a.placed_at, 1) for a in attempts] + [(a.ended_at, -1) for a in attempts], key=lambda e: (e[0], e[1])
    )
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("kill_one", [False, True], ids=["all-workers", "one-worker-killed"])
def test_four_workers_share_a_run_without_dialling_anyone_twice(cli, database_url, tmp_path, kill_one):
    cli.set_trunks(simulated_pbxs_toml(WORKERS, CHANNELS, 5, 'placed_log = "placed.jsonl"'))
    always_open(cli)
    write_roster(tmp_path / "roster.csv", 240, ["사직동", "삼청동"], seed=4)
    cli("recipients", "import", str(tmp_path / "roster.csv"))
    cli.clock.set(MONDAY_MORNING.replace(hour=10))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    db = cli.db()

    anchor = time.time()
    workers = [start_worker(cli, database_url, index, anchor) for index in range(1, WORKERS + 1)]
    try:
        if kill_one:
            placed_log = cli.root / "placed.jsonl"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (placed_log.exists() and placed_log.read_text().count("\n") > 40):
                time.sleep(0.05)
            workers[3].send_signal(signal.SIGKILL)  # gone for good: the others must settle its calls
        closed = wait_for_close(db, 1, timeout=150, workers=workers)
    finally:
        errors = stop_workers(workers)
    assert closed, f"the run did not close: {errors}"
    exits = [worker.returncode for worker in workers]
    assert exits[:3] == [0, 0, 0], errors
    assert exits[3] == (-signal.SIGKILL if kill_one else 0), errors[3]

    placed = [json.loads(line) for line in (cli.root / "placed.jsonl").read_text().splitlines()]
    assert len(placed) == len({p["token"] for p in placed}), "an attempt was dialled twice"
    assert len({p["pid"] for p in placed}) == WORKERS, "every worker dialled"

    with db.session() as session:
        members = list(session.exec(select(RunMember)))
        attempts = list(session.exec(select(Attempt)))
        tasks = list(session.exec(select(VisitTask)))
    assert len(members) > 200 and all(m.state in FINAL_STATES for m in members)
    never_placed = [a for a in attempts if a.token not in {p["token"] for p in placed}]
    if kill_one:  # killed between writing its claim and placing the call: counted as unknown, retried as new attempts
        assert all(a.worker == "pbx4" and a.disposition == "unknown" for a in never_placed), never_placed
    else:
        assert not never_placed, "every attempt written was placed"
    assert {p["token"] for p in placed} <= {a.token for a in attempts}
    by_worker = defaultdict(list)
    for attempt in attempts:
        by_worker[attempt.worker].append(attempt)
    assert set(by_worker) == {f"pbx{i}" for i in range(1, WORKERS + 1)}
    for worker, own in by_worker.items():
        assert max_concurrent(own) <= CHANNELS, f"{worker} went over its {CHANNELS} channels"
    attempts_of = Counter(a.member_id for a in attempts)
    for member in members:
        assert attempts_of[member.id] == member.attempts_made
        mine = [a for a in attempts if a.member_id == member.id]
        if member.state == MemberState.ACKNOWLEDGED:
            assert any(a.disposition == "acknowledged" for a in mine)
        if member.state == MemberState.UNREACHABLE:
            assert len(mine) >= 4 or any(a.disposition == "invalid_number" for a in mine)
    visits = {t.person_id for t in tasks if t.kind == "visit"}
    assert visits == {m.person_id for m in members if m.state == MemberState.UNREACHABLE}
    if kill_one:
        written_off = [a for a in by_worker["pbx4"] if a.disposition == "unknown"]
        assert written_off, "the killed worker had calls in flight, settled by the others"
    db.dispose()


def test_two_workers_dial_two_open_runs_on_their_trunks_within_each_trunks_limits(cli, database_url, tmp_path):
    """Two campaigns (two districts) open at once, dialled by 2 worker processes:
    each worker's one dialer serves both runs."""
    cli.set_trunks(simulated_pbxs_toml(2, CHANNELS, 5, 'placed_log = "placed.jsonl"'))
    always_open(cli)
    write_roster(tmp_path / "roster.csv", 120, ["사직동", "삼청동"], seed=5)
    cli("recipients", "import", str(tmp_path / "roster.csv"))
    text = (cli.root / "campaigns" / "weekly-safe-call.toml").read_text(encoding="utf-8")
    cli.edit_campaign("dongs = []", 'dongs = ["사직동"]')
    (cli.root / "campaigns" / "district-b.toml").write_text(
        text.replace('name = "weekly-safe-call"', 'name = "district-b"').replace("dongs = []", 'dongs = ["삼청동"]'),
        encoding="utf-8",
    )
    cli.clock.set(MONDAY_MORNING.replace(hour=10))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    cli("campaign", "launch", "district-b", "--no-dial")
    db = cli.db()
    anchor = time.time()
    workers = [start_worker(cli, database_url, index, anchor) for index in (1, 2)]
    try:
        closed = wait_for_close(db, 1, timeout=150, workers=workers) and wait_for_close(
            db, 2, timeout=60, workers=workers
        )
    finally:
        errors = stop_workers(workers)
    assert closed, f"the runs did not close: {errors}"
    assert [worker.returncode for worker in workers] == [0, 0], errors

    placed = [json.loads(line) for line in (cli.root / "placed.jsonl").read_text().splitlines()]
    assert len(placed) == len({p["token"] for p in placed}), "an attempt was dialled twice"
    with db.session() as session:
        members = list(session.exec(select(RunMember)))
        attempts = list(session.exec(select(Attempt)))
        tasks = list(session.exec(select(VisitTask)))
    db.dispose()
    assert {m.run_id for m in members} == {1, 2} and all(m.state in FINAL_STATES for m in members)
    for worker in ("pbx1", "pbx2"):
        own = sorted((a for a in attempts if a.worker == worker), key=lambda a: a.placed_at)
        assert {a.run_id for a in own} == {1, 2}, f"{worker} dialled both runs"
        assert max_concurrent(own) <= CHANNELS, f"{worker} went over its {CHANNELS} channels"
        gaps = [b.placed_at - a.placed_at for a, b in zip(own, own[1:], strict=False)]
        assert min(gaps).total_seconds() >= 0.2 - 1e-6, f"{worker} placed two calls within 1/5 s"
        assert all(a.placed_at <= a.ended_at for a in own)
    for run_id in (1, 2):
        unreachable = {m.person_id for m in members if m.run_id == run_id and m.state == MemberState.UNREACHABLE}
        assert {t.person_id for t in tasks if t.run_id == run_id and t.kind == "visit"} == unreachable
