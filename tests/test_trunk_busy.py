"""A dialer never waits inside a trunk: Twilio's 429 with Retry-After becomes a deferred placement, while the
other runs' calls, the deadlines and the leases go on. Real Twilio SDK against the local fake, real webhooks,
a clock that runs 20 times faster than real time (no real sleep stands for the wait)."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta

from sqlmodel import select

from conftest import SEOUL, person_row, write_csv
from live import always_open, free_port
from safecall.clock import ScaledClock
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, RunMember
from safecall.workers import TrunkDialing
from test_twilio import ENV, PUBLIC, twilio_trunks
from twilio_fake import FakeTwilio

SIMULATED = """
[trunks.sim]
type = "simulated"
channels = 4
calls_per_second = 2
seed = 1
away_percent = 0
invalid_percent = 0
[trunks.sim.mix]
ack = 1
"""
# Who is on which campaign: (campaign, trunk, dong, how many people).
CAMPAIGNS = [("weekly-safe-call", "cloud", "사직동", 3), ("east", "cloud", "삼청동", 6), ("west", "sim", "부암동", 4)]


def copy_campaign(cli, name: str, trunk: str, dong: str) -> None:
    text = (cli.root / "campaigns" / "weekly-safe-call.toml").read_text(encoding="utf-8")
    text = text.replace('name = "weekly-safe-call"', f'name = "{name}"').replace('# trunk = "simulated"', f'trunk = "{trunk}"')
    (cli.root / "campaigns" / f"{name}.toml").write_text(text.replace("dongs = []", f'dongs = ["{dong}"]'), encoding="utf-8")


def test_twilio_429_with_retry_after_defers_one_campaigns_calls_while_the_others_dial_and_no_lease_is_lost(cli, tmp_path, caplog):
    port = free_port()
    people, scripts, busy_numbers = [], {}, set()
    for c, (name, trunk, dong, count) in enumerate(CAMPAIGNS):
        for i in range(count):
            phone = f"010-0{c + 3}00-{i:04d}"
            e164 = "+8210" + phone[4:8] + phone[-4:]
            people.append(person_row(f"{name}{i}", phone, dong=dong))
            scripts[e164] = "ack"
            if name == "weekly-safe-call":
                busy_numbers.add(e164)
    cloud = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", scripts).start()
    cloud.retry_after = "60"
    cloud.refusals = {number: 2 for number in busy_numbers}  # each first call of this campaign: 429 twice
    cli.set_trunks(twilio_trunks(cloud.base_url, port) + SIMULATED)
    always_open(cli)
    for name, trunk, dong, _ in CAMPAIGNS[1:]:
        copy_campaign(cli, name, trunk, dong)
    cli.edit_campaign("dongs = []", 'dongs = ["사직동"]')
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", people)))

    clock = ScaledClock(datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL), speed=20)
    services = Services.open(load_instance(cli.root, ENV), clock)
    runs = {}
    for name, *_ in CAMPAIGNS:
        definition = services.campaign(name)
        runs[name] = launch_run(services.db, definition, definition.calendar(services.instance), now=clock.now(),
                                rules=services.rules_snapshot(name))[0].id
    stop, lapsed, leases = threading.Event(), [], {run_id: set() for run_id in runs.values()}

    def watch_leases() -> None:
        """What another process would see: while a run is open and held, its lease has not run out."""
        while not stop.is_set():
            with services.db.session() as session:
                now = clock.now()
                for run in session.exec(select(CampaignRun).where(CampaignRun.status == "open", CampaignRun.lock_owner.is_not(None))):
                    leases[run.id].add(run.lock_until)
                    if run.lock_until <= now:
                        lapsed.append((run.id, run.lock_until, now))
            stop.wait(0.02)

    dialers = [threading.Thread(target=TrunkDialing(services, trunk).dial_until_idle, args=(stop,)) for trunk in ("cloud", "sim")]
    caplog.set_level(logging.INFO, logger="safecall")
    threads = [threading.Thread(target=watch_leases, daemon=True), *dialers]
    try:
        for thread in threads:
            thread.start()
        for thread in dialers:
            thread.join(120)  # a bound against a hang; the test waits for the dialers to finish, never for a time
        assert not any(thread.is_alive() for thread in dialers), "the dialers did not finish"
    finally:
        stop.set()
        services.close_trunks()
        cloud.stop()
    assert lapsed == [], "a lease ran out while its run was being dialled"
    assert len(leases[runs["weekly-safe-call"]]) >= 2  # renewed while its calls waited for the trunk
    events = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert not [e for e in events if e["event"] in ("dialer_error", "attempt_not_placed")]
    deferred = [e for e in events if e["event"] == "attempt_deferred"]
    assert len(deferred) == 2 * len(busy_numbers) and all(e["seconds"] == 60.0 for e in deferred)

    with services.db.session() as session:
        assert {r.status for r in session.exec(select(CampaignRun))} == {"closed"}
        members = {m.person_id: m.state for m in session.exec(select(RunMember))}
        assert set(members.values()) == {"acknowledged"}  # the deferred calls were placed, and answered
        attempts = list(session.exec(select(Attempt)))
    by_run = {run_id: [a for a in attempts if a.run_id == run_id] for run_id in runs.values()}
    waited, others = by_run[runs["weekly-safe-call"]], by_run[runs["east"]] + by_run[runs["west"]]
    # Not lost, not dialled twice: one attempt each, one call made each, after two refusals of 60 seconds.
    assert len(waited) == len(busy_numbers) and all(a.number == 1 for a in waited)
    made = [call.to for call in cloud.calls.values()]
    assert all(made.count(number) == 1 for number in busy_numbers)
    assert sum(to in busy_numbers for _, to in cloud.creates) == 3 * len(busy_numbers)
    first_call = min(a.placed_at for a in attempts)
    assert all(a.placed_at >= first_call + timedelta(seconds=120) for a in waited)
    # Meanwhile the other campaigns, on this trunk and on the other one, were called and answered.
    placed_late = min(a.placed_at for a in waited)
    assert len(others) == 10 and all(a.placed_at < placed_late for a in others)
