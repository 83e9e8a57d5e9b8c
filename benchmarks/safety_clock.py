"""Issue 30: the safety clock of a simulated week, without and with one-tap follow-ups, and the visits they save.

A week of N persistent simulated people (safecall/telephony/simulated_people.py, the default mix of kinds) is
dialled to its end in virtual time through the real engine, twice from the same roster and seed: once with
check-in links off, once on ([checkin] links = true). With links on, the scheduler's own step
(`checkin.queue_due`, then `escalation.send_notifications`) runs every 5 virtual minutes inside the dialer's loop;
the texts go to a fake SMS sender standing in for the people's phones, and a simulated person taps their link
through the real `checkin.tap`, as the web page does.

Then people on the visit and call-back lists are reached by a human, by a fixed model (below), recorded through
the real `visits.record_outcome`; the clock is the real `safety_clock.clocks` of the run's tasks: from a person's
last unanswered call (or request for help) to the outcome a human recorded.

Assumptions (none of them measured; the same in both variants, so the difference is the follow-ups'):
- Taps: the share of people who tap a link within its life, by simulated kind (TAP_SHARE; `--tap-scale`
  multiplies it); a tap comes 5 minutes to 3 hours after the text (log-uniform), and only 08:00-21:00 local (a
  text in the night is tapped from 08:00). 97 % of taps are "잘 지내요", 3 % "도움이 필요해요", as keys are.
- Humans: the visit list is published at 08:00 each day; a visit team reaches a person on it 1 to 8 hours later
  (uniform) on a working day (weekends and public holidays wait for the next one). An officer calls back a
  request for help 15 minutes to 2 hours after it (uniform) in office hours (09:00-18:00 on working days), else
  from the next opening; a number to fix is fixed the next working day by noon.

    python benchmarks/safety_clock.py --people 20000 --channels 12 --json benchmarks/results/safety-clock-20k.json
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.common import machine, report  # noqa: E402
from benchmarks.engine_week import prepare  # noqa: E402
from benchmarks.finish_weeks import FIRST_MONDAY, TRUNKS  # noqa: E402 (the same simulated office of persistent people)
from safecall import checkin, escalation, safety_clock, visits  # noqa: E402
from safecall.clock import VirtualClock  # noqa: E402
from safecall.notify import SmsMessage  # noqa: E402
from safecall.runs import launch_run  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance  # noqa: E402
from safecall.store import Person, VisitTask  # noqa: E402
from safecall.telephony.simulated import _Draws  # noqa: E402
from safecall.telephony.simulated_people import PersistentPeople  # noqa: E402

MONDAY = FIRST_MONDAY
SECRET = "benchmark-only-web-secret-not-a-real-one-0123456789"
STEP = timedelta(minutes=5)
# Who taps a link sent after two unanswered calls, by simulated kind: an assumption, stated in the docstring.
TAP_SHARE = {
    "steady": 0.5,
    "out_mornings": 0.6,
    "slow": 0.6,
    "hard_to_reach": 0.4,
    "away_for_weeks": 0.3,
    "out_of_service": 0.0,
}
VISIT_OUTCOME = {"visit": "safe", "callback": "called_safe", "number": "number_fixed"}


class Phones:
    """The people's phones: a fake SMS sender that schedules each link's tap by the person's simulated kind."""

    def __init__(self, people: PersistentPeople, week, tz, tap_scale: float, rng: random.Random):
        self.people, self.week, self.tz, self.tap_scale, self.rng = people, week, tz, tap_scale, rng
        self.texts = 0
        self.taps: list[tuple[datetime, str, str]] = []  # (when, token, choice), unsorted
        self.now: datetime | None = None

    def send(self, message: SmsMessage) -> str | None:
        self.texts += 1
        link = message.variables.get("link")
        if not link:
            return None
        kind = self.people.profile(message.to, self.week).kind
        if self.rng.random() >= TAP_SHARE.get(kind, 0.5) * self.tap_scale:
            return None
        at = self.now + timedelta(minutes=5 * math.exp(self.rng.random() * math.log(36)))
        local = at.astimezone(self.tz)
        if local.hour >= 21 or local.hour < 8:
            morning = (local if local.hour < 8 else local + timedelta(days=1)).replace(hour=8, minute=0)
            at = morning + (at - at.replace(minute=0, second=0, microsecond=0))
        self.taps.append((at, link.rsplit("/", 1)[1], "help" if self.rng.random() < 0.03 else "well"))
        return None

    def report(self, provider_id: str):  # never asked: send gives no provider id
        raise AssertionError(provider_id)


def working_day(calendar, day) -> bool:
    return day.weekday() < 5 and (calendar.holidays is None or day not in calendar.holidays)


def next_working(calendar, moment: datetime, hour: int) -> datetime:
    """The first working day's `hour` at or after `moment` (local)."""
    local = moment.astimezone(calendar.tz)
    day = local.date() if local.hour < hour else local.date() + timedelta(days=1)
    while not working_day(calendar, day):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=calendar.tz)


def human_reaches(calendar, task: VisitTask, rng: random.Random) -> datetime:
    """When a human records an outcome for the task, by the model in the docstring."""
    created = task.created_at
    if task.kind == "callback":
        local = created.astimezone(calendar.tz)
        start = (
            created
            if working_day(calendar, local.date()) and 9 <= local.hour < 18
            else next_working(calendar, created, 9)
        )
        return start + timedelta(minutes=rng.uniform(15, 120))
    if task.kind == "number":
        return next_working(calendar, created, 9) + timedelta(hours=rng.uniform(0, 3))
    return next_working(calendar, created, 8) + timedelta(hours=rng.uniform(1, 8))


def run_variant(directory: Path, people: int, channels: int, seed: int, follow_ups: bool, tap_scale: float) -> dict:
    prepare(directory, people, channels, 50, None, trunks=TRUNKS.replace("{seed}", str(seed)))
    settings_file = directory / "config" / "safecall.toml"
    if follow_ups:
        settings_file.write_text(
            settings_file.read_text(encoding="utf-8") + "\n[checkin]\nlinks = true\n", encoding="utf-8"
        )
    instance = load_instance(directory, {"SAFECALL_WEB_SECRET": SECRET})
    clock = VirtualClock(MONDAY)
    services = Services.open(instance, clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(instance)
    run, _ = launch_run(services.db, campaign, calendar, now=clock.now())
    rng = random.Random(seed)
    phones = Phones(PersistentPeople(seed, _Draws), run.week_start, calendar.tz, tap_scale, rng)
    signer = checkin.LinkSigner(SECRET)
    taps = Counter()
    next_step = [clock.now()]

    def scheduler_step() -> bool:
        """The scheduler's check-in step, every STEP of virtual time, inside the dialer's loop; never asks a stop."""
        now = clock.now()
        if not follow_ups or now < next_step[0]:
            return False
        next_step[0] = now + STEP
        checkin.queue_due(services.db, instance, now=now, lifecycle=services.lifecycle)
        phones.now = now
        escalation.send_notifications(services.db, instance.settings, None, phones, now=now)
        due = sorted(t for t in phones.taps if t[0] <= now)
        phones.taps = [t for t in phones.taps if t[0] > now]
        for at, token, choice in due:
            taps[str(checkin.tap(services.db, services.lifecycle, signer, token, choice, at))] += 1
        return False

    started = time.perf_counter()
    dialer = services.dialer(campaign, clock=clock)
    dialer.run(run.id, stop_requested=scheduler_step)
    dialer.trunk.close()
    engine_seconds = time.perf_counter() - started
    with services.db.session() as session:
        tasks = list(session.exec(sa.select(VisitTask).where(VisitTask.run_id == run.id)).scalars())
    end = max([human_reaches(calendar, task, rng) for task in tasks] + [clock.now()])
    for task in sorted(tasks, key=lambda t: t.id):
        visits.record_outcome(
            services.db,
            task.id,
            VISIT_OUTCOME[task.kind],
            now=human_reaches(calendar, task, rng),
            tz=calendar.tz,
            actor="benchmark",
        )
    waits = safety_clock.clocks(services.db, instance.settings, now=end, run_id=run.id)
    summary = safety_clock.summarise(waits)
    with services.db.engine.connect() as connection:
        states = dict(
            connection.execute(
                sa.text("SELECT state, count(*) FROM runmember WHERE run_id = :run GROUP BY state"), {"run": run.id}
            ).all()
        )
        tapped = connection.execute(
            sa.text("SELECT count(*) FROM attempt WHERE run_id = :run AND digit = 'tap'"), {"run": run.id}
        ).scalar()
        people_count = connection.execute(sa.select(sa.func.count()).select_from(Person)).scalar()
    services.close()
    hours = [w.elapsed.total_seconds() / 3600 for w in waits]
    return {
        "follow_ups": follow_ups,
        "people": people_count,
        "engine_seconds": round(engine_seconds, 1),
        "tasks_by_kind": dict(Counter(t.kind for t in tasks)),
        "members_by_state": states,
        "texts_sent": phones.texts,
        "taps": dict(taps),
        "tap_attempts": tapped,
        "clock_count": summary.count,
        "clock_median_hours": round(summary.median.total_seconds() / 3600, 2) if summary.median else None,
        "clock_p95_hours": round(summary.p95.total_seconds() / 3600, 2) if summary.p95 else None,
        "clock_max_hours": round(max(hours), 2) if hours else None,
        "clock_by_kind_median_hours": {
            kind: round(sorted(h)[len(h) // 2], 2)
            for kind, h in (
                (k, [w.elapsed.total_seconds() / 3600 for w in waits if w.kind == k]) for k in {w.kind for w in waits}
            )
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--tap-scale", type=float, default=1.0, help="multiplies every kind's tap share")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = []
    for follow_ups in (False, True):
        with tempfile.TemporaryDirectory(prefix="safecall-clock-") as directory:
            variants.append(
                run_variant(
                    Path(directory) / "office", args.people, args.channels, args.seed, follow_ups, args.tap_scale
                )
            )
            print(variants[-1], file=sys.stderr, flush=True)
    without, with_ = variants
    results = {
        "people": args.people,
        "channels": args.channels,
        "seed": args.seed,
        "tap_scale": args.tap_scale,
        "tap_share_by_kind": TAP_SHARE,
        "machine": machine(),
        "without_follow_ups": without,
        "with_follow_ups": with_,
        "visits_saved": without["tasks_by_kind"].get("visit", 0) - with_["tasks_by_kind"].get("visit", 0),
    }
    report(results, args.json)


if __name__ == "__main__":
    main()
