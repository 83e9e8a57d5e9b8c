"""Latency of the visit team's list page: 10,000 open visit tasks, 50 users at once, on loopback.

The real server (`safecall web` in its own process: uvicorn, SQLite) serves the shipped instance's
three teams with 10,000 open visit tasks between them (each with its four unanswered attempts). Fifty team members
(17, 17 and 16 per team): 40 log in before the measured window and 10 inside it, at its start (`--logging-in`), so
argon2's stall is measured; each asks for their team's list (page 1: the 50 most urgent, out of about
3,333) again as soon as the last one came back (`--think 0`: the server is never idle), or after a pause drawn
around `--think` seconds (people reading the page), for `--seconds`. Every page view also writes its audit row.

Side by side (`--baseline DIR`, a checkout of other code, e.g. a worktree of main): each side builds its office
with its own code once; then every round serves a fresh copy of it from each side in turn (the side that goes first
alternates), and every round's figures are kept, with the spread.

    python benchmarks/web_team_list.py --tasks 10000 --users 50 --seconds 30
    python benchmarks/web_team_list.py --tasks 10000 --users 50 --seconds 60 --think 5
    python benchmarks/web_team_list.py --baseline ../main-worktree --rounds 3 --json benchmarks/results/web-ab.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The code measured: this checkout, or the baseline's when this script builds the baseline's office (`--build-office`).
CODE = Path(os.environ.get("WEB_TEAM_LIST_CODE", ROOT)).resolve()
sys.path.insert(0, str(CODE))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from benchmarks.common import machine, report  # noqa: E402
from safecall import users  # noqa: E402
from safecall.clock import SystemClock  # noqa: E402
from safecall.roster import import_roster  # noqa: E402
from safecall.runs import launch_run  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance, scaffold_instance  # noqa: E402
from safecall.store import Attempt, Disposition, MemberState, Person, RunMember, VisitTask  # noqa: E402
from safecall.synthetic import write_roster  # noqa: E402

PASSWORD = "benchmark password"
MONDAY = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 10:00 in Seoul


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_office(directory: Path, tasks: int, accounts: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The instance with `tasks` open visit tasks; (username, team) of the team members made, and each team's tasks."""
    scaffold_instance(directory)
    settings = directory / "config" / "safecall.toml"
    # login_attempts: the limit counts password checks in flight per address, and every user here comes from 127.0.0.1.
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + "\n[web]\nsecure_cookies = false\nsession_minutes = 600\nlogin_attempts = 100\n",
        encoding="utf-8",
    )
    services = Services.open(load_instance(directory), SystemClock())
    instance = services.instance
    dongs = [dong for team in instance.settings.teams for dong in team.dongs]
    import_roster(
        services.db,
        write_roster(directory / "roster.csv", tasks, dongs),
        instance.settings,
        now=MONDAY,
        today=MONDAY.date(),
    )
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
                attempts.append(
                    dict(
                        run_id=run.id,
                        member_id=member.id,
                        person_id=person.id,
                        number=number,
                        phone=person.phone,
                        token=secrets.token_urlsafe(18),
                        status="done",
                        placed_at=at,
                        ended_at=at + timedelta(seconds=45),
                        disposition=Disposition.NO_ANSWER,
                        inbound=False,
                    )
                )
            visit_tasks.append(
                dict(
                    person_id=person.id,
                    run_id=run.id,
                    kind="visit",
                    team=person.team,
                    created_at=MONDAY + timedelta(days=1),
                    created_on=(MONDAY + timedelta(days=1)).date(),
                    status="open",
                    weeks_without_ack=1 + member.id % 3,
                    answered_without_key=member.id % 5 == 0,
                    overdue=False,
                )
            )
        session.execute(
            sa.update(RunMember)
            .where(RunMember.run_id == run.id)
            .values(state=MemberState.UNREACHABLE, attempts_made=4)
        )
        session.execute(sa.insert(Attempt), attempts)
        session.execute(sa.insert(VisitTask), visit_tasks)
    teams = [team.name for team in instance.settings.teams]
    made = []
    for index in range(accounts):
        name, team = f"member{index:02d}", teams[index % len(teams)]
        users.add_user(services.db, name, PASSWORD, role="team", team=team, teams=teams, now=MONDAY)
        made.append((name, team))
    services.close()
    by_team = {team: sum(1 for task in visit_tasks if task["team"] == team) for team in teams}
    return made, by_team


async def log_in(client: httpx.AsyncClient, username: str) -> None:
    login = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    response = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf})
    if response.status_code != 303:
        raise SystemExit(f"login {username}: {response.status_code}")


async def keep_asking(
    client: httpx.AsyncClient,
    username: str,
    team: str,
    until: float,
    think: float,
    cards: int,
    latencies: list[tuple[float, float]],
    errors: list[str],
) -> None:
    draws = random.Random(username)
    while time.monotonic() < until:
        if think:
            await asyncio.sleep(min(draws.expovariate(1 / think), max(0.0, until - time.monotonic())))
            if time.monotonic() >= until:
                break
        started = time.perf_counter()
        page = await client.get(f"/team/{team}", params={"day": "2026-11-24"})
        elapsed = time.perf_counter() - started
        if page.status_code != 200 or page.text.count('class="card task"') != cards:
            errors.append(f"{username}: {page.status_code} {page.text[:300]!r}")
            continue
        latencies.append((started, elapsed))


async def load(
    base: str,
    accounts: list[tuple[str, str]],
    cards: dict[str, int],
    seconds: float,
    think: float,
    logging_in: int,
    cpu=lambda: 0.0,
) -> dict:
    """Page latencies (start, seconds), login latencies and the window's length. The last `logging_in` users log in
    inside the measured window, at its start, while the others (logged in before it) page: argon2's stall counts."""
    pages, logins, errors = [], [], []
    # A connection idle longer than the server's keep-alive (uvicorn: 5 s; a user logged in early waits for the others)
    # is closed by the server; reusing it just then fails with "Server disconnected". Browsers retry that; here the
    # client lets idle connections go first.
    clients = [
        httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1, keepalive_expiry=2))
        for _ in accounts
    ]
    ready = len(accounts) - logging_in
    try:
        await asyncio.gather(
            *(log_in(client, name) for client, (name, _) in zip(clients[:ready], accounts[:ready], strict=True))
        )
        until, began, cpu_began = time.monotonic() + seconds, time.perf_counter(), cpu()
        client_began = time.process_time()

        async def arrive(client: httpx.AsyncClient, name: str, team: str) -> None:
            started = time.perf_counter()
            await log_in(client, name)
            logins.append((started, time.perf_counter() - started))
            await keep_asking(client, name, team, until, think, cards[team], pages, errors)

        await asyncio.gather(
            *(
                keep_asking(client, name, team, until, think, cards[team], pages, errors)
                for client, (name, team) in zip(clients[:ready], accounts[:ready], strict=True)
            ),
            *(
                arrive(client, name, team)
                for client, (name, team) in zip(clients[ready:], accounts[ready:], strict=True)
            ),
        )
        return {
            "pages": pages,
            "logins": logins,
            "errors": errors,
            "began": began,
            "wall": time.perf_counter() - began,
            "server_cpu": cpu() - cpu_began,
            "client_cpu": time.process_time() - client_began,
        }
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_figures(latencies: list[float]) -> dict:
    if not latencies:
        return {"count": 0}
    return {
        "count": len(latencies),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p90_ms": round(1000 * percentile(latencies, 0.90), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }


def build_in(
    code: Path, directory: Path, tasks: int, accounts: int
) -> tuple[list[tuple[str, str]], dict[str, int], float]:
    """The office built by `code`'s own store (a baseline may have another schema): in a process of its own."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--build-office",
            str(directory),
            "--tasks",
            str(tasks),
            "--users",
            str(accounts),
        ],
        env={**os.environ, "WEB_TEAM_LIST_CODE": str(code)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"building the office with {code} failed:\n{done.stderr[-3000:]}")
    built = json.loads(done.stdout.splitlines()[-1])
    if not Path(built["safecall"]).resolve().is_relative_to(code):
        raise SystemExit(f"the office for {code} was built by the code in {built['safecall']}")
    return [tuple(account) for account in built["accounts"]], built["cards"], time.perf_counter() - started


def serve_and_load(code: Path, office: Path, accounts, cards, args, workers: int = 1) -> dict:
    """One measured window: `code`'s server (`python -m safecall web`, run from that checkout) on `office`."""
    port = free_port()
    # --workers is this checkout's option only: a baseline from before it would refuse it.
    processes = ["--workers", str(workers)] if workers > 1 else []
    env = {**os.environ, "SAFECALL_WEB_SECRET": secrets.token_hex(32), "PYTHONPATH": str(code)}
    # The server's log (a line a request) goes to a file: into a pipe nobody reads, it filled the pipe's 64 KB after
    # a few hundred pages and the server stopped, blocked on writing its log.
    log = office.parent / f"{office.name}-server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "safecall", "--config", str(office), "web", "--port", str(port), *processes],
            cwd=code,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the server did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        load_before = os.getloadavg()
        measured = asyncio.run(
            load(
                f"http://127.0.0.1:{port}",
                accounts,
                cards,
                args.seconds,
                args.think,
                args.logging_in,
                cpu=lambda: tree_cpu_seconds(server.pid),
            )
        )
        if measured["errors"] or not measured["pages"]:
            raise SystemExit(f"{len(measured['errors'])} errors, e.g. {measured['errors'][:3]}")
    finally:
        server.terminate()
        server.wait(60)
    errors_logged = [line for line in log.read_text().splitlines() if '"level": "error"' in line]
    if errors_logged:
        raise SystemExit(f"the server logged {len(errors_logged)} errors, e.g. {errors_logged[0][:3000]}")
    pages, logins, wall = measured["pages"], measured["logins"], measured["wall"]
    logins_over = max((start + seconds for start, seconds in logins), default=measured["began"])
    return {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(wall, 1),
        "pages_per_second": round(len(pages) / wall, 1),
        # The server's own CPU in the window (the 10 logins in it included), per page: what the code costs, whatever
        # share of the two cores the other jobs on the machine left it.
        "server_processes": workers,
        "server_cpu_seconds": round(measured["server_cpu"], 2),
        "server_cpu_ms_per_page": round(1000 * measured["server_cpu"] / len(pages), 1),
        # The 50 users are this one process: what it got of the cores beside the server's share.
        "client_cpu_seconds": round(measured["client_cpu"], 2),
        "pages": latency_figures([seconds for _, seconds in pages]),
        "pages_while_logins_ran": latency_figures([seconds for start, seconds in pages if start < logins_over]),
        "logins": latency_figures([seconds for _, seconds in logins]),
        "all_requests_logins_included": latency_figures([seconds for _, seconds in pages + logins]),
        "errors": len(measured["errors"]),
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children so far (the server's worker processes are its children)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return cpu_seconds(pid) + sum(tree_cpu_seconds(int(child)) for child in children)


def spread(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "rounds": values,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--logging-in", type=int, default=10, help="users who log in inside the measured window")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--think", type=float, default=0, help="mean seconds each user waits between pages (0: none)")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="a checkout of the code to compare with, round by round"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds (each side once a round); 3 with --baseline, else 1"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="this checkout's server processes (`safecall web --workers`)"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--build-office", type=Path, default=None, help=argparse.SUPPRESS
    )  # the child that builds one side's office
    args = parser.parse_args()
    if args.build_office:
        import safecall

        accounts, by_team = build_office(args.build_office, args.tasks, args.users)
        print(
            json.dumps(
                {
                    "safecall": safecall.__file__,
                    "accounts": accounts,
                    "cards": {team: min(50, count) for team, count in by_team.items()},
                }
            )
        )
        return
    if not 0 <= args.logging_in <= args.users:
        parser.error("--logging-in must be between 0 and --users")
    rounds = args.rounds or (3 if args.baseline else 1)
    sides = {"this": ROOT}
    if args.baseline:
        if not (args.baseline / "safecall" / "__init__.py").is_file():
            parser.error(f"--baseline {args.baseline}: no safecall package there")
        sides["baseline"] = args.baseline.resolve()
    with tempfile.TemporaryDirectory() as folder:
        built = {
            name: build_in(code, Path(folder) / name / "office", args.tasks, args.users) for name, code in sides.items()
        }
        results = []
        for number in range(1, rounds + 1):
            order = list(sides) if number % 2 or len(sides) == 1 else list(reversed(sides))  # who goes first alternates
            for name in order:
                accounts, cards, _ = built[name]
                office = Path(folder) / f"round{number}-{name}"
                shutil.copytree(Path(folder) / name / "office", office)
                figures = serve_and_load(
                    sides[name], office, accounts, cards, args, args.workers if name == "this" else 1
                )
                shutil.rmtree(office)
                results.append({"round": number, "code": name, **figures})
                print(
                    f"round {number} {name}: {figures['pages_per_second']} pages/s, "
                    f"{figures['server_cpu_ms_per_page']} ms CPU a page, p50 {figures['pages']['p50_ms']} ms, "
                    f"p99 {figures['pages']['p99_ms']} ms, "
                    f"with logins p99 {figures['all_requests_logins_included']['p99_ms']} ms, "
                    f"logins max {figures['logins'].get('max_ms')} ms, load {figures['load_average_after'][0]}",
                    file=sys.stderr,
                    flush=True,
                )
    summary = {
        name: {
            "pages_per_second": spread([r["pages_per_second"] for r in results if r["code"] == name]),
            "server_cpu_ms_per_page": spread([r["server_cpu_ms_per_page"] for r in results if r["code"] == name]),
            "p50_ms": spread([r["pages"]["p50_ms"] for r in results if r["code"] == name]),
            "p99_ms": spread([r["pages"]["p99_ms"] for r in results if r["code"] == name]),
            "p99_ms_logins_included": spread(
                [r["all_requests_logins_included"]["p99_ms"] for r in results if r["code"] == name]
            ),
        }
        for name in sides
    }
    if args.baseline:
        by_round = {(r["round"], r["code"]): r for r in results}
        summary["server_cpu_per_page_this_over_baseline"] = spread(
            [
                round(
                    by_round[n, "this"]["server_cpu_ms_per_page"] / by_round[n, "baseline"]["server_cpu_ms_per_page"], 2
                )
                for n in range(1, rounds + 1)
            ]
        )
        summary["pages_per_second_this_over_baseline"] = spread(
            [
                round(by_round[n, "this"]["pages_per_second"] / by_round[n, "baseline"]["pages_per_second"], 2)
                for n in range(1, rounds + 1)
            ]
        )
    report(
        {
            "benchmark": "web team list page",
            # The baseline's folder is this machine's: the file names its commit instead.
            "command": " ".join(
                "<baseline>" if args.baseline and arg == str(args.baseline) else arg for arg in sys.argv
            ),
            "commit": commit_of(ROOT),
            "baseline_commit": commit_of(args.baseline) if args.baseline else None,
            "machine": machine(),
            "open_tasks": args.tasks,
            "concurrent_users": args.users,
            "logging_in_inside_the_window": args.logging_in,
            "tasks_per_page": 50,
            "think_seconds": args.think,
            "server_processes": {name: args.workers if name == "this" else 1 for name in sides},
            "setup_seconds": {name: round(b[2], 1) for name, b in built.items()},
            "summary": summary,
            "rounds": results,
        },
        args.json,
    )


def commit_of(code: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return (
        (done.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""))
        if done.returncode == 0
        else None
    )


if __name__ == "__main__":
    main()
