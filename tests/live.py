"""Helpers for campaigns that run in real time against servers on loopback."""

from __future__ import annotations

import socket
import threading

from sqlmodel import select

from safecall.clock import SystemClock
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, Person, RunMember
from safecall.synthetic import ALWAYS_OPEN_CAMPAIGN, allow_fast_retries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def always_open(cli) -> None:
    """A calling window that is always open, and retries at once, for real-time runs."""
    for old, new in ALWAYS_OPEN_CAMPAIGN.items():
        cli.edit_campaign(old, new)
    allow_fast_retries(cli.root / "config" / "safecall.toml")


def run_live_campaign(cli, environ: dict, faults=None, services: Services | None = None):
    """Launch and dial this week's run in real time."""
    clock = SystemClock()
    services = services or Services.open(load_instance(cli.root, environ), clock)
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    dialer = services.dialer(campaign)
    if faults:
        threading.Thread(target=faults, daemon=True).start()
    try:
        dialer.run(run.id)
    finally:
        services.close_trunks()
    return services, dialer


def outcomes_by_name(services):
    with services.db.session() as session:
        people = {p.id: p.name for p in session.exec(select(Person))}
        members = {people[m.person_id]: m.state for m in session.exec(select(RunMember))}
        attempts: dict[str, list[str]] = {}
        for a in session.exec(select(Attempt).order_by(Attempt.number)):
            attempts.setdefault(people[a.person_id], []).append(a.disposition)
    return members, attempts
