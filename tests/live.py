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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def always_open(cli) -> None:
    """A calling window that is always open, and retries at once, for real-time runs."""
    cli.edit_campaign('spacing = ["1h", "3h", "next_day"]', 'spacing = ["0m"]')
    cli.edit_campaign('weekdays = ["mon", "tue", "wed", "thu", "fri"]', 'weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]')
    cli.edit_campaign('start = "09:00"', 'start = "00:00"')
    cli.edit_campaign('end = "18:00"', 'end = "23:59"')
    cli.edit_campaign('start = "10:00"', 'start = "00:00"')
    cli.edit_campaign("skip_holidays = true", "skip_holidays = false")


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
        dialer.trunk.close()
    return services, dialer


def outcomes_by_name(services):
    with services.db.session() as session:
        people = {p.id: p.name for p in session.exec(select(Person))}
        members = {people[m.person_id]: m.state for m in session.exec(select(RunMember))}
        attempts: dict[str, list[str]] = {}
        for a in session.exec(select(Attempt).order_by(Attempt.number)):
            attempts.setdefault(people[a.person_id], []).append(a.disposition)
    return members, attempts
