"""The engine on the simulated trunk (issue 2, points 5, 7 and 8): a whole week, retries, limits, crashes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import NEXT_MONDAY_MORNING, SEOUL, person_row, scripted_trunks, write_csv
from sqlmodel import select

import safecall
from safecall.clock import VirtualClock
from safecall.errors import RunLockedError
from safecall.ivr import load_flow
from safecall.runs import acquire_run_lock, launch_run, renew_run_lock
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, MemberState, Person, RunMember, VisitTask
from safecall.telephony.base import CallRequest
from safecall.telephony.simulated import SimulatedTrunk, SimulatedTrunkConfig

pytestmark = pytest.mark.both_databases

WEEK_SCRIPTS = {
    "+821001230001": ["ack"],
    "+821001230002": ["no_answer", "no_answer", "ack"],
    "+821001230003": ["no_answer"],
    "+821001230004": ["no_key"],
    "+821001230005": ["help"],
    "+821001230006": ["invalid"],
    "+827001230006": ["ack"],
    "+821001230007": ["busy"],
}


def week_roster(tmp_path):
    return write_csv(
        tmp_path / "week.csv",
        [
            person_row("가응답", "010-0123-0001"),
            person_row("나재시도", "010-0123-0002"),
            person_row("다무응답", "010-0123-0003", risk="상"),
            person_row("라무입력", "010-0123-0004", risk="하"),
            person_row("마도움", "010-0123-0005"),
            person_row("바번호", "010-0123-0006", phone2="070-0123-0006"),
            person_row("사통화중", "010-0123-0007", risk="하"),
        ],
    )


def attempts_of(cli, name):
    with cli.db().session() as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        return list(session.exec(select(Attempt).where(Attempt.person_id == person.id).order_by(Attempt.number)))


def test_a_whole_week_through_the_cli(cli, tmp_path):
    cli.set_trunks(scripted_trunks(WEEK_SCRIPTS))
    cli("recipients", "import", str(week_roster(tmp_path)))
    output = cli("campaign", "launch", "weekly-safe-call").output
    assert "Launched run 1 of weekly-safe-call for the week of 2026-11-23; first calls 2026-11-23 10:00" in output
    status = cli("campaign", "status").output
    for label, count in [
        ("people", 7),
        ("acknowledged on the first try", 1),
        ("acknowledged after retries", 2),
        ("help requests (pressed 2)", 1),
        ("pending retries", 0),
        ("final non-responders (home visit)", 3),
    ]:
        assert f"│ {label}" in status and any(
            line.startswith(f"│ {label}") and line.rstrip("│ ").endswith(str(count)) for line in status.splitlines()
        ), (label, status)
    assert "(closed)" in status
    assert "no_answer" in status and "answered_no_key" in status and "invalid_number" in status and "busy" in status

    # Retried: 3 retries after the first call, spaced 1 h, 3 h, then the next calling day.
    times = [a.placed_at.astimezone(SEOUL) for a in attempts_of(cli, "다무응답")]
    assert len(times) == 4
    assert times[0].strftime("%Y-%m-%d %H:%M") == "2026-11-23 10:00"
    assert timedelta(hours=1) <= times[1] - times[0] <= timedelta(hours=1, minutes=2)
    assert timedelta(hours=3) <= times[2] - times[1] <= timedelta(hours=3, minutes=2)
    assert times[3].strftime("%Y-%m-%d %H:%M") == "2026-11-24 09:00"
    # Answered without a key is never an acknowledgement, and is retried like no answer.
    assert [a.disposition for a in attempts_of(cli, "라무입력")] == ["answered_no_key"] * 4
    # The invalid first number is left for the second one.
    assert [(a.phone, a.disposition) for a in attempts_of(cli, "바번호")] == [
        ("+821001230006", "invalid_number"),
        ("+827001230006", "acknowledged"),
    ]
    assert [a.disposition for a in attempts_of(cli, "가응답")] == ["acknowledged"]

    visits = cli("visits", "list", "--date", "2026-11-24").output
    names = [name for name in ("라무입력", "다무응답", "사통화중") if name in visits]
    assert names == ["라무입력", "다무응답", "사통화중"]
    assert visits.index("라무입력") < visits.index("다무응답") < visits.index("사통화중")  # no key first, then risk
    for name in ("가응답", "나재시도", "바번호", "마도움"):
        assert name not in visits
    callbacks = cli("visits", "list", "--kind", "callback", "--date", "2026-11-23").output
    assert "마도움" in callbacks and "라무입력" not in callbacks

    # Launching again resumes the same run and never starts a second one.
    again = cli("campaign", "launch", "weekly-safe-call").output
    assert "Run 1 of weekly-safe-call for the week of 2026-11-23 already exists (closed); resuming it." in again
    with cli.db().session() as session:
        assert len(list(session.exec(select(CampaignRun)))) == 1
        assert len(list(session.exec(select(Attempt)))) == 1 + 3 + 4 + 4 + 1 + 2 + 4


def test_consecutive_weeks_without_acknowledgement_raise_priority(cli, tmp_path):
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"], "+821001230002": ["no_key"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [person_row("일주", "010-0123-0002", risk="상"), person_row("이주", "010-0123-0001", risk="하")],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")
    cli.clock.set(NEXT_MONDAY_MORNING)  # the week above was played on this clock; the next one starts afresh
    cli("campaign", "launch", "weekly-safe-call")
    with cli.db().session() as session:
        weeks = {
            session.get(Person, t.person_id).name: t.weeks_without_ack
            for t in session.exec(select(VisitTask).where(VisitTask.run_id == 2))
        }
    assert weeks == {"일주": 2, "이주": 2}
    listing = cli("visits", "list", "--date", "2026-12-01").output
    # Both weeks' tasks are open; the second week's come first, and "answered without key" beats risk.
    assert listing.index("일주") < listing.index("이주")


def services_for(cli, clock) -> tuple[Services, object]:
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    campaign = services.campaign("weekly-safe-call")
    return services, campaign


def many_people(cli, tmp_path, count, scripts=None, channels=4, cps=2):
    numbers = [f"010-0124-{i:04d}" for i in range(count)]
    cli.set_trunks(scripted_trunks(scripts or {}, channels=channels, cps=cps))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "many.csv",
                [
                    person_row(f"사람{i}", number, born=f"19{40 + i % 50}-01-{1 + i % 28:02d}")
                    for i, number in enumerate(numbers)
                ],
            )
        ),
    )


def test_channel_and_rate_limits_hold(cli, tmp_path, clock):
    many_people(cli, tmp_path, 40, channels=4, cps=2)
    services, campaign = services_for(cli, clock)
    dialer = services.dialer(campaign)
    busiest = []
    original = dialer.trunk.originate

    def counting_originate(request):
        original(request)
        busiest.append(len(dialer.trunk._active))

    dialer.trunk.originate = counting_originate
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    dialer.run(run.id)
    assert max(busiest) == 4 and len(busiest) == 40
    placed = sorted(r.placed_at for r in dialer.trunk.placed)
    assert min(b - a for a, b in zip(placed, placed[1:], strict=False)) >= timedelta(seconds=0.5)
    with services.db.session() as session:
        assert {m.state for m in session.exec(select(RunMember))} == {MemberState.ACKNOWLEDGED}


class Crash(Exception):
    """Stands in for the process dying."""


def test_an_interrupted_run_resumes_without_a_double_call(cli, tmp_path, clock):
    many_people(cli, tmp_path, 12, scripts={f"+8210012400{i:02d}": ["no_answer", "ack"] for i in range(12)}, channels=3)
    services, campaign = services_for(cli, clock)
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    first = services.dialer(campaign)
    original = first.trunk.originate
    calls = []

    def dying_originate(request):
        if len(calls) == 7:
            raise Crash()  # the attempt row is written; the process dies before placing it
        calls.append(request)
        original(request)

    first.trunk.originate = dying_originate
    with pytest.raises(Crash):
        first.run(run.id)
    with services.db.session() as session:
        before = {a.token for a in session.exec(select(Attempt))}
    assert len(before) == 8  # 7 placed, 1 written and never placed

    second = services_for(cli, clock)[0].dialer(campaign)  # a new process: new trunk, new in-memory state
    second.run(run.id)
    retry_tokens = {r.token for r in second.trunk.placed}
    assert not retry_tokens & before, "an attempt written before the crash was placed again"
    with services.db.session() as session:
        attempts = list(session.exec(select(Attempt)))
        members = list(session.exec(select(RunMember)))
    assert len(attempts) == len(before) + len(retry_tokens) == 24
    assert {(a.member_id, a.number) for a in attempts} == {(m.id, n) for m in members for n in (1, 2)}
    assert all(m.state == MemberState.ACKNOWLEDGED for m in members)


def test_an_acknowledgement_survives_a_crash_before_the_call_is_closed(cli, tmp_path, clock):
    many_people(cli, tmp_path, 1, scripts={"+821001240000": ["ack"]})
    services, campaign = services_for(cli, clock)
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    first = services.dialer(campaign)
    sink = first.trunk.sink

    class DyingAfterKeypress:
        def record_keypress(self, *args, **kwargs):
            assert sink.record_keypress(*args, **kwargs)
            raise Crash()

        def __getattr__(self, name):  # the rest of the sink as it is (start_ivr, ...)
            return getattr(sink, name)

    first.trunk.sink = DyingAfterKeypress()
    with pytest.raises(Crash):
        first.run(run.id)
    second = services_for(cli, clock)[0].dialer(campaign)  # a new process
    second.run(run.id)
    assert not second.trunk.placed
    with services.db.session() as session:
        [attempt] = session.exec(select(Attempt)).all()
        [member] = session.exec(select(RunMember)).all()
    assert (attempt.disposition, attempt.digit, member.state) == ("acknowledged", "1", MemberState.ACKNOWLEDGED)


def test_a_run_is_dialled_by_one_process_at_a_time(cli, tmp_path, clock):
    many_people(cli, tmp_path, 2)
    services, campaign = services_for(cli, clock)
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    acquire_run_lock(services.db, run.id, "otherhost:1", now=clock.now(), ttl=timedelta(minutes=2))
    with pytest.raises(RunLockedError, match="being dialled by otherhost:1"):
        services.dialer(campaign).run(run.id)
    clock.advance(timedelta(minutes=3))  # the other process stopped renewing its lease
    services.dialer(campaign).run(run.id)


def test_a_dialer_whose_run_was_taken_over_stops_at_its_next_renewal(cli, tmp_path, clock):
    many_people(cli, tmp_path, 1)
    services, campaign = services_for(cli, clock)
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    acquire_run_lock(services.db, run.id, "thishost:1", now=clock.now(), ttl=timedelta(minutes=2))
    renew_run_lock(services.db, run.id, "thishost:1", now=clock.now() + timedelta(minutes=1), ttl=timedelta(minutes=2))
    with services.db.session() as session:
        assert session.get(CampaignRun, run.id).lock_until == clock.now() + timedelta(minutes=3)
    clock.advance(timedelta(minutes=4))  # this one stalled past its lease; another took the run over
    acquire_run_lock(services.db, run.id, "otherhost:2", now=clock.now(), ttl=timedelta(minutes=2))
    with pytest.raises(RunLockedError, match="taken over by another process"):
        renew_run_lock(services.db, run.id, "thishost:1", now=clock.now(), ttl=timedelta(minutes=2))
    with services.db.session() as session:
        assert session.get(CampaignRun, run.id).lock_owner == "otherhost:2"


def test_people_paused_after_launch_are_withdrawn_not_called(cli, tmp_path):
    cli.set_trunks(scripted_trunks({}))
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row("입원", "010-0123-0001"), person_row("집", "010-0123-0002")])),
    )
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    cli("recipients", "pause", "입원", "--until", "2026-12-20")
    output = cli("campaign", "run").output
    assert any(line.startswith("│ withdrawn") and line.rstrip("│ ").endswith("1") for line in output.splitlines()), (
        output
    )
    assert attempts_of(cli, "입원") == []
    assert len(attempts_of(cli, "집")) == 1


def test_launch_late_in_the_week_waits_for_the_next_opening(cli, tmp_path):
    cli.set_trunks(scripted_trunks({}))
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("가", "010-0123-0001")])))
    cli.clock.set(cli.clock.now() + timedelta(days=3, hours=12))  # Thursday 20:00
    output = cli("campaign", "launch", "weekly-safe-call", "--no-dial").output
    assert "first calls 2026-11-27 09:00" in output  # Friday, at opening
    listing = cli("campaign", "list").output
    assert "2026-11-23" in listing and "open" in listing


def test_a_launch_after_the_weeks_window_calls_on_the_next_calling_day(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("가", "010-0123-0001")])))
    cli.clock.set(cli.clock.now() + timedelta(days=4, hours=12))  # Friday 20:00
    output = cli("campaign", "launch", "weekly-safe-call", "--no-dial").output
    # The week is not skipped: its run keeps its week and calls on Monday.
    assert "for the week of 2026-11-23; first calls 2026-11-30 09:00" in output


def test_retries_that_run_into_next_week_are_not_doubled_by_next_weeks_run(cli, tmp_path):
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(tmp_path / "r.csv", [person_row("금요일", "010-0123-0001"), person_row("보통", "010-0123-0002")])
        ),
    )
    cli.clock.set(cli.clock.now() + timedelta(days=4, hours=8))  # Friday 16:00
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    db = cli.db()
    services, campaign = services_for(cli, cli.clock)
    dialer = services.dialer(campaign)
    friday_evening = datetime(2026, 11, 27, 17, 30, tzinfo=SEOUL)
    dialer.run(1, stop_requested=lambda: cli.clock.now() >= friday_evening)
    cli.clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=SEOUL))
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    with db.session() as session:
        second_week = {
            session.get(Person, m.person_id).name for m in session.exec(select(RunMember).where(RunMember.run_id == 2))
        }
    assert second_week == {"보통"}
    services.dialer(campaign).run(1)
    assert len(attempts_of(cli, "금요일")) == 4


def test_enrolment_in_sql_agrees_with_is_dialable(cli, tmp_path):
    """Launch enrols in one INSERT ... SELECT; it must pick exactly the people is_dialable would call."""
    from datetime import date

    from safecall.lifecycle import is_dialable

    rows = [person_row(f"사람{i}", f"010-0125-{i:04d}", born=f"1950-01-{i + 1:02d}") for i in range(12)]
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows)))
    db = cli.db()
    today = date(2026, 11, 23)
    variants = [
        {},
        {"consent_date": None},
        {"consent_date": date(2026, 11, 24)},
        {"consent_date": today},
        {"status": "closed"},
        {"status": "paused", "paused_until": None},
        {"status": "paused", "paused_until": today},
        {"status": "paused", "paused_until": date(2026, 11, 22)},
        {"status": "paused", "paused_until": date(2027, 1, 1)},
        {"status": "active", "paused_until": date(2027, 1, 1)},
        {"consent_date": date(2020, 1, 1)},
        {"status": "closed", "consent_date": None},
    ]
    with db.transaction() as session:
        people = list(session.exec(select(Person).order_by(Person.id)))
        for person, changes in zip(people, variants, strict=True):
            for name, value in changes.items():
                setattr(person, name, value)
            session.add(person)
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    with db.session() as session:
        expected = {p.id for p in session.exec(select(Person)) if is_dialable(p, today)}
        enrolled = set(session.exec(select(RunMember.person_id)))
    assert enrolled == expected and 0 < len(expected) < len(variants)
    db.dispose()


def test_a_keypress_reported_after_the_person_was_written_off_closes_their_visit(cli, tmp_path, clock):
    # Twilio may deliver the key's webhook after the final status callback: the person answered, so no visit.
    many_people(cli, tmp_path, 2, scripts={"+821001240000": ["no_answer"], "+821001240001": ["no_answer"]})
    services, campaign = services_for(cli, clock)
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    dialer = services.dialer(campaign)
    dialer.run(run.id)
    with services.db.session() as session:
        tasks = {t.person_id: t for t in session.exec(select(VisitTask).where(VisitTask.kind == "visit"))}
        last = session.exec(select(Attempt).where(Attempt.number == 4, Attempt.phone == "+821001240000")).one()
    assert len(tasks) == 2 and all(t.status == "open" and t.weeks_without_ack == 1 for t in tasks.values())

    late = last.ended_at + timedelta(seconds=3)
    assert dialer.lifecycle.record_keypress(last.token, "1", "acknowledged", late)
    with services.db.session() as session:
        closed = session.get(VisitTask, tasks[last.person_id].id)
        other = session.get(VisitTask, next(t.id for p, t in tasks.items() if p != last.person_id))
        member = session.get(RunMember, last.member_id)
    assert (closed.status, closed.outcome, closed.recorded_by) == ("closed", "acknowledged_late", "safecall")
    assert closed.recorded_at == late  # the call's time (virtual here); the real time beside it
    assert abs((closed.recorded_real_at - datetime.now(UTC)).total_seconds()) < 60
    assert member.state == MemberState.ACKNOWLEDGED
    assert other.status == "open"  # only the person who pressed


def test_the_simulated_trunk_follows_its_mix_and_repeats_a_call_exactly():
    # The benchmarks' answer mix comes from these draws:
    # the shares must hold, and a call's course must not change on restart.
    config = SimulatedTrunkConfig(
        type="simulated", mix={"ack": 70, "no_answer": 20, "busy": 10, "help": 0}, away_percent=5, invalid_percent=2
    )
    flow = load_flow(Path(safecall.__file__).parent / "defaults" / "ivr", "safe-call")
    start = datetime(2026, 11, 23, tzinfo=SEOUL)

    def trunk():
        return SimulatedTrunk(config, VirtualClock(start), sink=None)

    def request(i, attempt=1, week=date(2026, 11, 23)):
        return CallRequest(f"token-{i}", f"+8210{i:08d}", attempt, week, start, 30, 180, flow)

    shares = Counter(trunk().behaviour(request(i)) for i in range(20_000))
    expected = {"invalid": 2, "no_answer": 5 + 0.93 * 20, "ack": 0.93 * 70, "busy": 0.93 * 10}
    assert set(shares) == set(expected)  # a weight of 0 is never drawn
    for name, percent in expected.items():
        assert abs(shares[name] / 200 - percent) < 1.2, (name, shares[name] / 200)

    def courses(simulated, **change):
        return [
            [(at, kind, extra) for at, _, _, kind, extra in simulated.plan(request(i, **change))] for i in range(300)
        ]

    # Same (seed, number, week, attempt): the same course, to the microsecond, from a new trunk (a restart).
    assert courses(trunk()) == courses(trunk())
    assert any(kind == "key" for course in courses(trunk()) for _, kind, _ in course)
    # Another attempt or another week is drawn afresh.
    assert courses(trunk(), attempt=2) != courses(trunk())
    assert courses(trunk(), week=date(2026, 11, 30)) != courses(trunk())
