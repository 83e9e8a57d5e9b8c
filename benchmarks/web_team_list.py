"""Latency of the visit team's list page: 10,000 open visit tasks, 50 users at once, on loopback.

The real server (`safecall web` in its own process: uvicorn, one worker, SQLite) serves the shipped instance's
three teams with 10,000 open visit tasks between them (each with its four unanswered attempts). Fifty team members
(17, 17 and 16 per team) log in, then each asks for their team's list (page 1: the 50 most urgent, out of about
3,333) again as soon as the last one came back (`--think 0`: the server is never idle), or after a pause drawn
around `--think` seconds (people reading the page), for `--seconds`. Every page view also writes its audit row.

    python benchmarks/web_team_list.py --tasks 10000 --users 50 --seconds 30
    python benchmarks/web_team_list.py --tasks 10000 --users 50 --seconds 60 --think 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from safecall import users  # noqa: E402
from safecall.clock import SystemClock  # noqa: E402
from safecall.roster import import_roster  # noqa: E402
from safecall.runs import launch_run  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance, scaffold_instance  # noqa: E402
from safecall.store import Attempt, Disposition, MemberState, Person, RunMember, VisitTask  # noqa: E402
from safecall.synthetic import write_roster  # noqa: E402

PASSWORD = "benchmark password"
MONDAY = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)  # 10:00 in Seoul


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_office(directory: Path, tasks: int, accounts: int) -> list[tuple[str, str]]:
    """The instance with `tasks` open visit tasks; (username, team) of the team members made."""
    scaffold_instance(directory)
    settings = directory / "config" / "safecall.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\n[web]\nsecure_cookies = false\nsession_minutes = 600\n", encoding="utf-8")
    services = Services.open(load_instance(directory), SystemClock())
    instance = services.instance
    dongs = [dong for team in instance.settings.teams for dong in team.dongs]
    import_roster(services.db, write_roster(directory / "roster.csv", tasks, dongs), instance.settings, now=MONDAY,
                  today=MONDAY.date())
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(instance), now=MONDAY)
    with services.db.transaction() as session:
        people = {p.id: p for p in session.exec(sa.select(Person)).scalars()}
        members = list(session.exec(sa.select(RunMember).where(RunMember.run_id == run.id)).scalars())
        attempts, visit_tasks = [], []
        for member in members:
            person = people[member.person_id]
            for number, hours in enumerate((0, 1, 4, 23), start=1):
                at = MONDAY + timedelta(hours=hours, seconds=member.id % 3600)
                attempts.append(dict(run_id=run.id, member_id=member.id, person_id=person.id, number=number, phone=person.phone,
                                     token=secrets.token_urlsafe(18), status="done", placed_at=at, ended_at=at + timedelta(seconds=45),
                                     disposition=Disposition.NO_ANSWER, inbound=False))
            visit_tasks.append(dict(person_id=person.id, run_id=run.id, kind="visit", team=person.team, created_at=MONDAY + timedelta(days=1),
                                    created_on=(MONDAY + timedelta(days=1)).date(), status="open", weeks_without_ack=1 + member.id % 3,
                                    answered_without_key=member.id % 5 == 0, overdue=False))
        session.execute(sa.update(RunMember).where(RunMember.run_id == run.id).values(state=MemberState.UNREACHABLE, attempts_made=4))
        session.execute(sa.insert(Attempt), attempts)
        session.execute(sa.insert(VisitTask), visit_tasks)
    teams = [team.name for team in instance.settings.teams]
    made = []
    for index in range(accounts):
        name, team = f"member{index:02d}", teams[index % len(teams)]
        users.add_user(services.db, name, PASSWORD, role="team", team=team, teams=teams, now=MONDAY)
        made.append((name, team))
    services.close()
    return made


async def log_in(client: httpx.AsyncClient, username: str) -> None:
    login = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    response = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf})
    if response.status_code != 303:
        raise SystemExit(f"login {username}: {response.status_code}")


async def keep_asking(client: httpx.AsyncClient, username: str, team: str, until: float, think: float, latencies: list[float],
                      errors: list[str]) -> None:
    draws = random.Random(username)
    while time.monotonic() < until:
        if think:
            await asyncio.sleep(min(draws.expovariate(1 / think), max(0.0, until - time.monotonic())))
            if time.monotonic() >= until:
                break
        started = time.perf_counter()
        page = await client.get(f"/team/{team}", params={"day": "2026-11-24"})
        elapsed = time.perf_counter() - started
        if page.status_code != 200 or page.text.count('class="card task"') != 50:
            errors.append(f"{username}: {page.status_code} {page.text[:300]!r}")
            continue
        latencies.append(elapsed)


async def load(base: str, accounts: list[tuple[str, str]], seconds: float, think: float) -> tuple[list[float], list[str], float]:
    latencies, errors = [], []
    clients = [httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1)) for _ in accounts]
    try:
        # Logins first (argon2 is slow on purpose), then everyone asks for their list at once.
        await asyncio.gather(*(log_in(client, name) for client, (name, _) in zip(clients, accounts)))
        until, began = time.monotonic() + seconds, time.perf_counter()
        await asyncio.gather(*(keep_asking(client, name, team, until, think, latencies, errors)
                               for client, (name, team) in zip(clients, accounts)))
        return latencies, errors, time.perf_counter() - began
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--think", type=float, default=0, help="mean seconds each user waits between pages (0: none)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "office"
        setup = time.perf_counter()
        accounts = build_office(directory, args.tasks, args.users)
        setup = time.perf_counter() - setup
        port = free_port()
        env = {**os.environ, "SAFECALL_WEB_SECRET": secrets.token_hex(32)}
        server = subprocess.Popen([sys.executable, "-m", "safecall", "--config", str(directory), "web", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"the server did not start: {server.stderr.read() if server.poll() is not None else ''}")
                    time.sleep(0.2)
            latencies, errors, wall = asyncio.run(load(f"http://127.0.0.1:{port}", accounts, args.seconds, args.think))
            if errors or not latencies:
                raise SystemExit(f"{len(errors)} errors, e.g. {errors[:3]}")
        finally:
            server.terminate()
            server.wait(10)
    report({
        "benchmark": "web team list page",
        "machine": machine(),
        "open_tasks": args.tasks,
        "concurrent_users": args.users,
        "tasks_per_page": 50,
        "think_seconds": args.think,
        "seconds": round(wall, 1),
        "setup_seconds": round(setup, 1),
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p90_ms": round(1000 * percentile(latencies, 0.90), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }, args.json)


if __name__ == "__main__":
    main()
