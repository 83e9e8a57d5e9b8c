"""The call lifecycle (lifecycle.py) as a decision table, and one trunk shared by several open runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import HEADER, person_row, scripted_trunks, write_csv
from sqlmodel import select

from safecall.lifecycle import Final, Retry, Unchanged, next_step
from safecall.policy import CallingCalendar
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, Disposition, MemberState, Person, RunMember, VisitTask

SEOUL = ZoneInfo("Asia/Seoul")
CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
ENDED = datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL)  # a Tuesday morning
SPACING = ["1h", "3h", "next_day"]
RETRY_ON = ["answered_no_key", "no_answer", "busy", "failed", "machine", "invalid_number", "unknown"]


def decide(disposition, state=MemberState.IN_CALL, retries_used=0, numbers_left=True, retry_on=RETRY_ON, ended=ENDED):
    return next_step(
        disposition=disposition,
        member_state=state,
        retries_used=retries_used,
        max_retries=3,
        retry_on=retry_on,
        numbers_left=numbers_left,
        spacing=SPACING,
        ended_at=ended,
        calendar=CALENDAR,
    )


@pytest.mark.parametrize(
    "disposition, state, retries_used, numbers_left, expected",
    [
        # Pressed 1: final, no task; pressed 2: final with a callback.
        (Disposition.ACKNOWLEDGED, MemberState.IN_CALL, 0, True, Final(MemberState.ACKNOWLEDGED, None)),
        (
            Disposition.ACKNOWLEDGED,
            MemberState.UNREACHABLE,
            3,
            True,
            Final(MemberState.ACKNOWLEDGED, None),
        ),  # a late key
        (Disposition.HELP_REQUESTED, MemberState.IN_CALL, 2, True, Final(MemberState.HELP_REQUESTED, "callback")),
        # Someone who answered is never downgraded or called again by a later report.
        (Disposition.ACKNOWLEDGED, MemberState.ACKNOWLEDGED, 0, True, Unchanged()),
        (Disposition.HELP_REQUESTED, MemberState.ACKNOWLEDGED, 0, True, Unchanged()),
        (Disposition.NO_ANSWER, MemberState.ACKNOWLEDGED, 0, True, Unchanged()),
        (Disposition.UNKNOWN, MemberState.HELP_REQUESTED, 0, True, Unchanged()),
        # Not answered: retried with the campaign's spacing while retries and numbers are left.
        (Disposition.NO_ANSWER, MemberState.IN_CALL, 0, True, Retry(ENDED + timedelta(hours=1))),
        (Disposition.ANSWERED_NO_KEY, MemberState.IN_CALL, 1, True, Retry(ENDED + timedelta(hours=3))),
        (Disposition.BUSY, MemberState.IN_CALL, 2, True, Retry(datetime(2026, 11, 25, 9, 0, tzinfo=SEOUL))),  # next day
        (Disposition.UNKNOWN, MemberState.IN_CALL, 0, True, Retry(ENDED + timedelta(hours=1))),
        # The last retry used, or no number left: a home visit.
        (Disposition.NO_ANSWER, MemberState.IN_CALL, 3, True, Final(MemberState.UNREACHABLE, "visit")),
        (Disposition.INVALID_NUMBER, MemberState.IN_CALL, 0, False, Final(MemberState.UNREACHABLE, "visit")),
    ],
)
def test_what_follows_a_call(disposition, state, retries_used, numbers_left, expected):
    assert decide(disposition, state, retries_used, numbers_left) == expected


def test_a_disposition_the_campaign_does_not_retry_goes_to_a_visit_at_once():
    assert decide(Disposition.MACHINE, retry_on=["no_answer"]) == Final(MemberState.UNREACHABLE, "visit")


def test_a_retry_after_the_window_moves_to_the_next_calling_day():
    friday_evening = datetime(2026, 11, 27, 17, 30, tzinfo=SEOUL)
    assert decide(Disposition.NO_ANSWER, ended=friday_evening) == Retry(datetime(2026, 11, 30, 9, 0, tzinfo=SEOUL))


def two_districts(cli, tmp_path, big: int, small: int, channels: int = 2, cps: float = 1) -> None:
    """Two campaigns on one trunk: district A with `big` people, district B with `small`, both due Monday 10:00."""
    scripts = {f"+8210012{6 if i < big else 7}{i:04d}": ["no_answer", "ack"] for i in range(big + small)}
    cli.set_trunks(scripted_trunks(scripts, channels=channels, cps=cps))
    rows = [
        person_row(
            f"가{i}",
            f"010-{'0126' if i < big else '0127'}-{i:04d}",
            dong="사직동" if i < big else "삼청동",
            born=f"19{40 + i % 50}-02-{1 + i % 28:02d}",
        )
        for i in range(big + small)
    ]
    cli("recipients", "import", str(write_csv(tmp_path / "two.csv", rows)))
    text = (cli.root / "campaigns" / "weekly-safe-call.toml").read_text(encoding="utf-8")
    cli.edit_campaign("dongs = []", 'dongs = ["사직동"]')
    (cli.root / "campaigns" / "district-b.toml").write_text(
        text.replace('name = "weekly-safe-call"', 'name = "district-b"').replace("dongs = []", 'dongs = ["삼청동"]'),
        encoding="utf-8",
    )


def test_two_runs_share_one_trunk_fairly_within_its_limits(cli, tmp_path, clock):
    two_districts(cli, tmp_path, big=40, small=4, channels=2, cps=1)
    clock.set(clock.now().replace(hour=10))
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    try:
        runs = [
            launch_run(
                services.db,
                services.campaign(name),
                services.campaign(name).calendar(services.instance),
                now=clock.now(),
            )[0]
            for name in ("weekly-safe-call", "district-b")
        ]
        dialer = services.dialer()
        assert dialer.trunk is services.trunk() is services.dialer(services.campaign("district-b")).trunk  # one trunk
        placed = []  # (run campaign, the clock when the call really went out)
        original = dialer.trunk.originate

        def logging_originate(request):
            placed.append((request.number[:9], clock.now(), len(dialer.trunk._active)))
            original(request)

        dialer.trunk.originate = logging_originate
        dialer.dial(lambda: [run.id for run in runs])
        with services.db.session() as session:
            assert {run.status for run in session.exec(select(CampaignRun))} == {"closed"}
            assert {m.state for m in session.exec(select(RunMember))} == {MemberState.ACKNOWLEDGED}
            attempts = list(session.exec(select(Attempt)))
    finally:
        services.close()
    assert len(placed) == 2 * 44
    # Channels and calls per second hold across both runs: never more than 2 calls up, never two within a second.
    assert max(active for _, _, active in placed) < 2
    moments = [at for _, at, _ in placed]
    assert min(b - a for a, b in zip(moments, moments[1:], strict=False)) >= timedelta(seconds=1)
    # District B's four first calls are not left behind district A's forty: they go out among the first eight.
    first_calls_b = [i for i, (number, _, _) in enumerate(placed) if number == "+82100127"][:4]
    assert max(first_calls_b) < 8, first_calls_b
    # placed_at is when the call went out: no call is answered or ended before it was placed.
    assert all(a.placed_at <= (a.answered_at or a.ended_at) <= a.ended_at for a in attempts)


def test_runs_on_a_trunk_are_dialled_by_the_scheduler_through_one_dialer(cli, tmp_path, clock):
    from safecall.scheduler import Scheduler

    two_districts(cli, tmp_path, big=6, small=3)
    clock.set(clock.now().replace(hour=10))
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    try:
        scheduler = Scheduler(services, None, None, threaded=False)
        for _ in range(200):  # each tick dials until idle; virtual time moves with the calls
            scheduler.tick()
            with services.db.session() as session:
                runs = list(session.exec(select(CampaignRun)))
            if len(runs) == 2 and all(run.status == "closed" for run in runs):
                break
            clock.advance(timedelta(minutes=30))
        assert list(services.trunks) == ["simulated"]  # one trunk for both runs
        with services.db.session() as session:
            assert sorted(
                run.campaign for run in session.exec(select(CampaignRun).where(CampaignRun.status == "closed"))
            ) == ["district-b", "weekly-safe-call"]
            assert not list(session.exec(select(VisitTask)))
    finally:
        services.close()


def test_a_persons_call_time_narrows_their_calls_inside_the_campaigns_window(cli, tmp_path, clock):
    header = HEADER + ["통화 희망 시간"]
    rows = [
        person_row("오후분", "010-0129-0001") + ["오후"],
        person_row("반시간", "010-0129-0002", born="1946-03-01") + ["10:30~11:00"],
        person_row("아무때", "010-0129-0003", born="1947-03-01") + [""],
    ]
    cli.set_trunks(
        scripted_trunks(
            {
                "+821001290001": ["no_answer", "no_answer", "ack"],
                "+821001290002": ["no_answer", "ack"],
                "+821001290003": ["ack"],
            }
        )
    )
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows, header=header)))
    cli("campaign", "launch", "weekly-safe-call")
    with cli.db().session() as session:
        people = {p.id: p.name for p in session.exec(select(Person))}
        placed = [
            (people[a.person_id], a.placed_at.astimezone(SEOUL))
            for a in session.exec(select(Attempt).order_by(Attempt.id))
        ]
    afternoon = [at for name, at in placed if name == "오후분"]
    half_hour = [at for name, at in placed if name == "반시간"]
    anytime = [at for name, at in placed if name == "아무때"]
    assert len(afternoon) == 3 and all(13 <= at.hour < 18 for at in afternoon), afternoon
    assert len(half_hour) == 2 and all((10, 30) <= (at.hour, at.minute) < (11, 0) for at in half_hour), half_hour
    assert anytime[0].hour == 10 and anytime[0].minute == 0  # the campaign's slot, as before


@pytest.mark.parametrize(
    "value, message",
    [
        ("25:00-26:00", "not a time of day"),
        ("오후 2시", "not a call time"),
        ("12:00-09:00", "start is not before the end"),
    ],
)
def test_a_call_time_that_makes_no_sense_is_refused_naming_its_row(cli, tmp_path, value, message):
    header = HEADER + ["통화 희망 시간"]
    result = cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row("가", "010-0129-0001") + [value]], header=header)),
        ok=False,
    )
    assert result.exit_code == 1 and "row 2, column '통화 희망 시간'" in result.output and message in result.output
    with cli.db().session() as session:
        assert not session.exec(select(Person)).all()  # nothing imported
