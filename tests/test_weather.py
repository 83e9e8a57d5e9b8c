"""Weather-triggered checks (issue 30, item 4): the KMA client against a fake API hub on 127.0.0.1, the check it
launches once per advisory through the signal path, the officers told, and `safecall weather check`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from conftest import SEOUL, person_row, scripted_trunks, write_csv
from kma_fake import AUTH_KEY, FakeKma
from sqlmodel import select

from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import WeatherSettings, load_instance
from safecall.store import CampaignRun, OutboxMessage, RunMember, Signal
from safecall.weather import KmaWeather, WeatherError, parse_advisories

REGION = "L1100100"  # the office's 특보구역 in these tests (서울동북권)


@pytest.fixture
def kma():
    fake = FakeKma().start()
    yield fake
    fake.stop()


def configure(cli, tmp_path, kma, enabled: bool = True) -> None:
    settings = cli.root / "config" / "safecall.toml"
    text = settings.read_text(encoding="utf-8").replace(
        'email = "team1@example.org"', 'email = "team1@example.org"\nofficer_email = "officer1@example.org"', 1
    )
    settings.write_text(
        text
        + f'''
[weather]
enabled = {str(enabled).lower()}
campaign = "weekly-safe-call"
regions = ["{REGION}"]
api_key = {{ env = "KMA_AUTH_KEY" }}
base_url = "{kma.base_url}"
''',
        encoding="utf-8",
    )
    cli.environ["KMA_AUTH_KEY"] = AUTH_KEY
    cli.set_trunks(scripted_trunks({"+821001230001": ["ack"], "+821001230002": ["ack"], "+821001230003": ["ack"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("고위험", "010-0123-0001", risk="상"),
                    person_row("보통", "010-0123-0002", risk="중"),
                    person_row("고위험둘", "010-0123-0003", risk="상", dong="부암동"),
                ],
            )
        ),
    )


def weather_runs(cli):
    with cli.db().session() as session:
        runs = list(session.exec(select(CampaignRun).where(CampaignRun.label.startswith("weather-"))))
        return [
            (run, sorted(m.person_id for m in session.exec(select(RunMember).where(RunMember.run_id == run.id))))
            for run in runs
        ]


def test_the_client_reads_heat_and_cold_advisories_and_leaves_out_others_and_lifted_ones(kma):
    kma.advise(REGION, "서울동북권", "202608011100", "폭염", "경보")
    kma.advise("L1100200", "서울동남권", "202608011100", "폭염", "주의보", cmd="해제")
    kma.advise(REGION, "서울동북권", "202608010500", "호우", "주의보")
    kma.advise("L1010100", "강릉평지", "202601100600", "한파", "주의보")
    client = KmaWeather(WeatherSettings(api_key={"env": "K"}, base_url=kma.base_url), {"K": AUTH_KEY}, SEOUL)
    advisories = client.advisories()
    assert [(a.region_id, a.kind, a.level, a.issued_at) for a in advisories] == [
        (REGION, "heat", "경보", datetime(2026, 8, 1, 11, 0, tzinfo=SEOUL)),
        ("L1010100", "cold", "주의보", datetime(2026, 1, 10, 6, 0, tzinfo=SEOUL)),
    ]
    assert advisories[0].korean() == "서울동북권 폭염경보"
    assert kma.requests[-1]["authKey"] == [AUTH_KEY]


def test_a_wrong_key_or_a_failing_hub_is_a_clear_error_without_the_key(kma, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = KmaWeather(WeatherSettings(api_key={"env": "K"}, base_url=kma.base_url), {"K": "wrong-secret-key"}, SEOUL)
    with pytest.raises(WeatherError, match="HTTP 401") as raised:
        wrong.advisories()
    assert "wrong-secret-key" not in str(raised.value) and "wrong-secret-key" not in caplog.text
    assert "authKey=***" in caplog.text  # httpx's own request log line, masked
    with pytest.raises(WeatherError, match="a row before the column names"):
        parse_advisories("L1100000, 서울, L1100100, 서울동북권, 202608011100, 202608011100, 폭염, 경보, 발표,\n", SEOUL)


def test_an_advisory_launches_one_check_of_the_people_at_higher_risk_and_tells_the_officers(cli, tmp_path, kma):
    configure(cli, tmp_path, kma)
    kma.advise(REGION, "서울동북권", "202611230700", "한파", "주의보")
    kma.advise("L1100200", "서울동남권", "202611230700", "한파", "경보")  # not the office's region
    output = cli("weather", "check").output
    assert (
        "서울동북권 한파주의보 (issued 2026-11-23 07:00): launched run 1, a check call to 2 people at higher risk"
        in output
    )
    assert "서울동남권" not in output
    [(run, members)] = weather_runs(cli)
    assert run.label == "weather-L1100100-cold-202611230700" and len(members) == 2
    with cli.db().session() as session:
        assert {s.kind for s in session.exec(select(Signal))} == {"weather"}
        told = {
            n.recipient: n for n in session.exec(select(OutboxMessage).where(OutboxMessage.key.startswith("weather:")))
        }
    assert {"officer1@example.org", "team2@example.org", "team3@example.org"} <= set(told)  # each team's officer
    assert "서울동북권 한파주의보" in told["officer1@example.org"].body and "2명" in told["officer1@example.org"].body
    # Polled again (by hand or by the scheduler): the same advisory launches nothing more.
    assert "its check was launched before (run 1)" in cli("weather", "check").output
    scheduler = Scheduler(
        Services.open(load_instance(cli.root, cli.environ), cli.clock), None, None, threaded=False, dial=False
    )
    scheduler.tick()
    assert len(weather_runs(cli)) == 1
    # `signals launch` of the same day does not call the weather-flagged people a second time.
    assert "nothing to call" in cli("signals", "launch", "weekly-safe-call", "--date", "2026-11-23", "--no-dial").output


def test_the_scheduler_polls_and_an_upgrade_to_a_warning_is_a_new_advisory(cli, tmp_path, kma):
    configure(cli, tmp_path, kma)
    scheduler = Scheduler(
        Services.open(load_instance(cli.root, cli.environ), cli.clock), None, None, threaded=False, dial=False
    )
    scheduler.tick()
    assert weather_runs(cli) == [] and len(kma.requests) == 1
    kma.advise(REGION, "서울동북권", "202611230700", "한파", "주의보")
    cli.clock.set(cli.clock.now() + timedelta(minutes=10))
    scheduler.tick()
    assert len(kma.requests) == 1  # not yet: every 30 minutes
    cli.clock.set(cli.clock.now() + timedelta(minutes=25))
    scheduler.tick()
    assert len(weather_runs(cli)) == 1
    kma.failures.append(503)  # a failing poll is logged; the next one reads again
    cli.clock.set(cli.clock.now() + timedelta(minutes=30))
    scheduler.tick()
    kma.rows[0] = (REGION, "서울동북권", "202611231000", "한파", "경보", "대치")
    cli.clock.set(cli.clock.now() + timedelta(minutes=30))
    scheduler.tick()
    assert sorted(run.label for run, _ in weather_runs(cli)) == [
        "weather-L1100100-cold-202611230700",
        "weather-L1100100-cold-202611231000",
    ]


def test_dry_run_launches_and_tells_nothing(cli, tmp_path, kma):
    configure(cli, tmp_path, kma)
    kma.advise(REGION, "서울동북권", "202611230700", "폭염", "경보")
    output = cli("weather", "check", "--dry-run").output
    assert "서울동북권 폭염경보 (issued 2026-11-23 07:00): would call 2 people at higher risk." in output
    assert weather_runs(cli) == []
    with cli.db().session() as session:
        assert session.exec(select(OutboxMessage)).all() == [] and session.exec(select(Signal)).all() == []


def test_weather_check_when_off_says_how_to_turn_it_on_and_config_show_hides_the_key(cli, tmp_path, kma):
    configure(cli, tmp_path, kma, enabled=False)
    result = cli("weather", "check", ok=False)
    assert result.exit_code != 0 and "[weather] enabled = true" in result.output
    shown = cli("config", "show").output
    assert AUTH_KEY not in shown and "KMA_AUTH_KEY" in shown
    cli.use_locale("ko_KR.UTF-8")
    configure_on = cli.root / "config" / "safecall.toml"
    configure_on.write_text(
        configure_on.read_text(encoding="utf-8").replace("enabled = false", "enabled = true"), encoding="utf-8"
    )
    assert "이 주민센터 특보구역에 폭염·한파 특보가 없습니다." in cli("weather", "check").output


def test_a_missing_campaign_fails_before_anything_is_written(cli, tmp_path, kma):
    configure(cli, tmp_path, kma)
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('campaign = "weekly-safe-call"', 'campaign = "no-such"'),
        encoding="utf-8",
    )
    kma.advise(REGION, "서울동북권", "202611230700", "폭염", "경보")
    result = cli("weather", "check", ok=False)
    assert result.exit_code != 0 and "no-such" in result.output
    with cli.db().session() as session:
        assert session.exec(select(Signal)).all() == [] and session.exec(select(OutboxMessage)).all() == []
