"""`safecall scheduler run` in a real process on one Asterisk trunk (the stand-in): one trunk per PBX, shared by
every open run, and a trunk that cannot start (its FastAGI port taken) never kills the process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from asterisk_standin import AsteriskStandIn
from conftest import MONDAY_MORNING, person_row, write_csv
from live import always_open, free_port
from sqlmodel import select
from test_asterisk import AMI_ENV, asterisk_trunks

from safecall.store import CampaignRun, Person, RunMember, VisitTask

CLOCKED_CLI = str(Path(__file__).with_name("clocked_cli.py"))  # safecall as a process, on the test's Monday
CHANNELS = 2
CALLS_PER_SECOND = 2

# Two districts, two campaigns on the one trunk: two runs open at once.
PEOPLE = {  # name -> (number as dialled, district, what the stand-in plays)
    "사직응답": ("01001230001", "사직동", "ack"),
    "사직무입력": ("01001230002", "사직동", "no_key"),
    "사직통화중": ("01001230003", "사직동", "busy"),
    "삼청도움": ("01001230004", "삼청동", "help"),
    "삼청무응답": ("01001230005", "삼청동", "no_answer"),
    "삼청응답": ("01001230006", "삼청동", "ack"),
}
EXPECTED = {
    "사직응답": "acknowledged",
    "사직무입력": "unreachable",
    "사직통화중": "unreachable",
    "삼청도움": "help_requested",
    "삼청무응답": "unreachable",
    "삼청응답": "acknowledged",
}


def two_district_campaigns(cli) -> None:
    always_open(cli)
    shipped = cli.root / "campaigns" / "weekly-safe-call.toml"
    text = shipped.read_text(encoding="utf-8")
    for name, dong in (("district-sajik", "사직동"), ("district-samcheong", "삼청동")):
        (cli.root / "campaigns" / f"{name}.toml").write_text(
            text.replace('name = "weekly-safe-call"', f'name = "{name}"').replace("dongs = []", f'dongs = ["{dong}"]'),
            encoding="utf-8",
        )
    shipped.unlink()


class Scheduler:
    """`safecall scheduler run` as a process on the test's Monday, in real time (speed 1);
    its JSON log read as it comes."""

    def __init__(self, cli, seconds: float = 150):
        start = MONDAY_MORNING.replace(hour=10)
        self.process = subprocess.Popen(
            [
                sys.executable,
                CLOCKED_CLI,
                "--at",
                start.isoformat(),
                "--speed",
                "1",
                "--anchor",
                str(time.time()),
                "--",
                "--config",
                str(cli.root),
                "scheduler",
                "run",
                "--interval",
                "0.5",
                "--seconds",
                str(seconds),
            ],
            env={**os.environ, **AMI_ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def logged(self, event: str) -> list[dict]:
        return [e for e in self.events if e["event"] == event]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        finally:
            self.process.kill()
        self._reader.join(10)
        return self.process.returncode


def wait_until(condition, timeout: float, scheduler: Scheduler) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        assert scheduler.process.poll() is None, "the scheduler process died"
        time.sleep(0.2)
    return False


def all_runs_closed(db, count: int):
    def closed() -> bool:
        with db.session() as session:
            runs = list(session.exec(select(CampaignRun)))
        return len(runs) == count and all(run.status == "closed" for run in runs)

    return closed


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (from /proc: its socket inodes among the listening sockets)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def member_states(db) -> dict[str, str]:
    with db.session() as session:
        names = {p.id: p.name for p in session.exec(select(Person))}
        return {names[m.person_id]: m.state for m in session.exec(select(RunMember))}


def test_two_runs_on_one_asterisk_trunk_share_its_fastagi_server_and_its_limits(cli, tmp_path):
    agi_port = free_port()
    stand_in = AsteriskStandIn(
        {number: scenario for number, _, scenario in PEOPLE.values()}, fastagi=("127.0.0.1", agi_port)
    ).start()
    stand_in.packet_gap = 0.03  # calls of a second or two: longer than the placing pace, so the channels fill up
    cli.set_trunks(
        asterisk_trunks(stand_in.port, agi_port)
        .replace("channels = 4", f"channels = {CHANNELS}")
        .replace("calls_per_second = 20", f"calls_per_second = {CALLS_PER_SECOND}")
    )
    two_district_campaigns(cli)
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row(name, f"{number[:3]}-{number[3:7]}-{number[7:]}", dong=dong)
                    for name, (number, dong, _) in PEOPLE.items()
                ],
            )
        ),
    )
    db = cli.db()
    scheduler = Scheduler(cli)
    try:
        closed = wait_until(all_runs_closed(db, 2), 120, scheduler)
        ports = listening_ports(scheduler.process.pid)
        alive = scheduler.process.poll() is None
    finally:
        code = scheduler.stop()
        stand_in.stop()
    events = scheduler.events
    assert closed, [e for e in events if e.get("level") in ("warning", "error")]
    assert alive and code == 0, events[-5:]
    assert ports == {agi_port}, "one FastAGI server, and no other listener"
    assert not scheduler.logged("dialer_error") and not scheduler.logged("tick_failed")

    # Both runs finish with the right lists.
    assert member_states(db) == EXPECTED
    with db.session() as session:
        names = {p.id: p.name for p in session.exec(select(Person))}
        campaigns = {run.id: run.campaign for run in session.exec(select(CampaignRun))}
        tasks = {(campaigns[t.run_id], names[t.person_id], t.kind) for t in session.exec(select(VisitTask))}
    assert tasks == {
        ("district-sajik", "사직무입력", "visit"),
        ("district-sajik", "사직통화중", "visit"),
        ("district-samcheong", "삼청무응답", "visit"),
        ("district-samcheong", "삼청도움", "callback"),
    }

    # The trunk's limits held across both runs, by the stand-in's own log of Originates.
    calls = sorted(stand_in.calls, key=lambda call: call.originated_at)
    assert len(calls) == 1 + 4 + 4 + 1 + 4 + 1 and {c.number for c in calls} == {n for n, _, _ in PEOPLE.values()}
    times = [call.originated_at for call in calls]
    for first, after_next in zip(times, times[CALLS_PER_SECOND:], strict=False):
        assert after_next - first >= 0.9, f"{CALLS_PER_SECOND + 1} Originates within {after_next - first:.3f} s"
    edges = sorted(
        [(c.originated_at, 1) for c in calls] + [(c.hung_up_at, -1) for c in calls], key=lambda e: (e[0], e[1])
    )
    open_channels = peak = 0
    for _, change in edges:
        open_channels += change
        peak = max(peak, open_channels)
    assert peak == CHANNELS, f"{peak} calls up at once on a trunk of {CHANNELS} channels"
    db.dispose()


def test_a_taken_fastagi_port_is_logged_and_the_scheduler_dials_once_it_is_free(cli, tmp_path):
    agi_port = free_port()
    stand_in = AsteriskStandIn({"01001230001": "ack"}, fastagi=("127.0.0.1", agi_port)).start()
    cli.set_trunks(asterisk_trunks(stand_in.port, agi_port))
    always_open(cli)
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("응답", "010-0123-0001")])))
    squatter = socket.create_server(("127.0.0.1", agi_port))  # e.g. another SafeCall process serving this trunk
    db = cli.db()
    scheduler = Scheduler(cli)
    try:
        # Ticks go on while the port is taken: each says why, nobody is dialled, the process lives.
        refused_twice = wait_until(lambda: len(scheduler.logged("dialer_error")) >= 2, 60, scheduler)
        assert stand_in.calls == []
        squatter.close()
        closed = wait_until(all_runs_closed(db, 1), 60, scheduler)
    finally:
        squatter.close()
        code = scheduler.stop()
        stand_in.stop()
    errors = scheduler.logged("dialer_error")
    assert refused_twice and all(f"cannot listen on 127.0.0.1:{agi_port}" in e["error"] for e in errors), errors
    assert closed and code == 0, scheduler.events[-5:]
    assert member_states(db) == {"응답": "acknowledged"}
    db.dispose()
