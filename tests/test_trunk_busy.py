"""A dialer never waits inside a trunk: Twilio's 429 with Retry-After becomes a deferred placement, while the
other runs' calls, the deadlines and the leases go on. Real Twilio SDK against the local fake, real webhooks,
a clock that runs 10 times faster than real time (no real sleep stands for the wait)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta

from conftest import SEOUL, person_row, scripted_trunks, write_csv
from live import always_open, free_port
from sqlmodel import select
from test_twilio import ENV, PUBLIC, twilio_trunks
from twilio_fake import FakeTwilio

from safecall import speech
from safecall.clock import ScaledClock
from safecall.dialer import Dialer
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, Person, RunMember
from safecall.telephony.base import TrunkBusy
from safecall.telephony.simulated import SimulatedTrunk
from safecall.workers import TrunkDialing

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
    text = text.replace('name = "weekly-safe-call"', f'name = "{name}"').replace(
        '# trunk = "simulated"', f'trunk = "{trunk}"'
    )
    (cli.root / "campaigns" / f"{name}.toml").write_text(
        text.replace("dongs = []", f'dongs = ["{dong}"]'), encoding="utf-8"
    )


def test_twilio_429_with_retry_after_defers_one_campaigns_calls_while_the_others_dial_and_no_lease_is_lost(
    cli, tmp_path, caplog
):
    port = free_port()
    people, scripts, busy_numbers = [], {}, set()
    for c, (name, _trunk, dong, count) in enumerate(CAMPAIGNS):
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

    # The Twilio trunk loads the Korean speech model (seconds, stalling the whole process) when it starts: done
    # before the clock runs 10 times faster than real time, where a 7-second stall would outlast half a lease.
    speech.analyser()
    clock = ScaledClock(datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL), speed=10)
    services = Services.open(load_instance(cli.root, ENV), clock)
    runs = {}
    for name, *_ in CAMPAIGNS:
        definition = services.campaign(name)
        runs[name] = launch_run(
            services.db,
            definition,
            definition.calendar(services.instance),
            now=clock.now(),
            rules=services.rules_snapshot(name),
        )[0].id
    stop, lapsed, leases = threading.Event(), [], {run_id: set() for run_id in runs.values()}

    def watch_leases() -> None:
        """What another process would see: while a run is open and held, its lease has not run out."""
        while not stop.is_set():
            with services.db.session() as session:
                now = clock.now()
                for run in session.exec(
                    select(CampaignRun).where(CampaignRun.status == "open", CampaignRun.lock_owner.is_not(None))
                ):
                    leases[run.id].add(run.lock_until)
                    if run.lock_until <= now:
                        lapsed.append((run.id, run.lock_until, now))
            stop.wait(0.02)

    dialers = [
        threading.Thread(target=TrunkDialing(services, trunk).dial_until_idle, args=(stop,))
        for trunk in ("cloud", "sim")
    ]
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


class RefusingTrunk(SimulatedTrunk):
    """The simulated switch, refusing every call to `refused` numbers for now (TrunkBusy, as Twilio's 429)."""

    def __init__(self, *args, refused: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.refused, self.refusals = refused, 0

    def originate(self, request):
        if request.number in self.refused:
            self.refusals += 1
            raise TrunkBusy("too many requests", retry_after=60)
        super().originate(request)


def refusing_dialer(cli, clock, tmp_path, start: datetime):
    cli.set_trunks(scripted_trunks({"+821001310001": ["ack"], "+821001310002": ["ack"]}))
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row("거절", "010-0131-0001"), person_row("응답", "010-0131-0002")])),
    )
    clock.set(start)
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    definition = services.campaign("weekly-safe-call")
    run, _ = launch_run(
        services.db,
        definition,
        definition.calendar(services.instance),
        now=clock.now(),
        rules=services.rules_snapshot("weekly-safe-call"),
    )
    trunk = RefusingTrunk(services.instance.trunk(), clock, services.lifecycle, refused={"+821001310001"})
    return services, run, trunk, Dialer(services.db, trunk, clock, services.lifecycle)


def member_and_attempts(services, phone: str):
    with services.db.session() as session:
        person = session.exec(select(Person).where(Person.phone == phone)).one()
        member = session.exec(select(RunMember).where(RunMember.person_id == person.id)).one()
        return member, list(session.exec(select(Attempt).where(Attempt.person_id == person.id)))


def test_a_call_waiting_for_the_trunk_when_the_window_closes_is_not_placed_and_the_person_is_retried(
    cli, clock, tmp_path
):
    # Friday 17:59:30: the refused call would go out after 18:00, when the window (09:00-18:00) is shut.
    services, run, trunk, dialer = refusing_dialer(
        cli, clock, tmp_path, datetime(2026, 11, 27, 17, 59, 30, tzinfo=SEOUL)
    )
    dialer.run(run.id, return_when_idle=True)
    member, attempts = member_and_attempts(services, "+821001310001")
    assert trunk.refusals == 1 and [a.disposition for a in attempts] == ["failed"] and attempts[0].status == "done"
    # Never dropped: called again on the next calling day, Monday, within the window.
    assert member.state == "pending" and member.next_attempt_at.astimezone(SEOUL) >= datetime(
        2026, 11, 30, 9, 0, tzinfo=SEOUL
    )
    services.close()


def test_stopping_while_a_call_waits_for_the_trunk_ends_it_unplaced_and_keeps_the_person(cli, clock, tmp_path):
    services, run, trunk, dialer = refusing_dialer(cli, clock, tmp_path, datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL))
    dialer.run(run.id, stop_requested=lambda: trunk.refusals >= 2)  # a SIGTERM during the second wait
    member, attempts = member_and_attempts(services, "+821001310001")
    assert [(a.number, a.disposition) for a in attempts] == [(1, "failed")]  # one attempt, tried twice, never placed
    assert member.state == "pending" and member.next_attempt_at is not None
    assert not [r for r in trunk.placed if r.number == "+821001310001"]
    with services.db.session() as session:
        assert session.get(CampaignRun, run.id).lock_owner is None  # released: another process may resume it
    services.close()
