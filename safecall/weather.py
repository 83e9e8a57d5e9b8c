"""Weather-triggered checks: the Korea Meteorological Administration's heat and cold wave advisories (폭염, 한파 특보).

One small interface (WeatherSource) with the real client (KmaWeather: the KMA API hub's 특보 현황, over HTTPS) and
a fake (FakeWeather). An advisory for one of the office's warning regions ([weather] regions, KMA's 특보구역 codes)
launches, once per advisory, a check call of the people marked at higher risk through the signal path: a
"weather" signal for each of them that day, then the same ad-hoc run `signals launch` makes, under its own label.
The officers are told by e-mail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import select

from safecall.domain import PersonStatus
from safecall.errors import SafeCallError
from safecall.events import log_event
from safecall.settings import WeatherSettings
from safecall.store import CampaignRun, Person, Signal, audit

log = logging.getLogger("safecall.weather")

KINDS = {"폭염": "heat", "H": "heat", "한파": "cold", "C": "cold"}  # the API hub names them in Korean or by letter
KIND_KOREAN = {"heat": "폭염", "cold": "한파"}
LIFTED = {"해제", "3"}  # an advisory lifted is no reason to call
WEATHER_SIGNAL = "weather"


class WeatherError(SafeCallError):
    """The advisories could not be read; the next poll tries again."""


@dataclass(frozen=True)
class Advisory:
    region_id: str  # KMA's 특보구역 code, e.g. L1100200
    region: str  # its name, e.g. 서울동남권
    kind: str  # heat or cold
    level: str  # 주의보 or 경보
    issued_at: datetime  # TM_FC: when KMA issued it; with the region and kind it names the advisory

    @property
    def key(self) -> str:
        return f"{self.region_id}-{self.kind}-{self.issued_at.strftime('%Y%m%d%H%M')}"

    def korean(self) -> str:
        return f"{self.region} {KIND_KOREAN[self.kind]}{self.level}"


class WeatherSource(Protocol):
    def advisories(self) -> list[Advisory]:
        """The heat and cold wave advisories in force now, every region."""


class FakeWeather:
    """Advisories a test or a drill sets; nothing goes over the network."""

    def __init__(self, advisories: Sequence[Advisory] = ()):
        self.current = list(advisories)

    def advisories(self) -> list[Advisory]:
        return list(self.current)


class _NoKeyInLogs(logging.Filter):
    """httpx logs each request's URL at INFO, and the API hub takes the key in the URL: mask it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = re.sub(r"authKey=[^&\s\"']+", "authKey=***", record.getMessage()), ()
        return True


_MASK = _NoKeyInLogs()


class KmaWeather:
    """The KMA API hub's 특보 현황 (wrn_now_data.php): comma-separated rows under a `# REG_UP, ..., REG_ID, ...`
    header; the columns are found by their names in it."""

    def __init__(self, settings: WeatherSettings, environ: Mapping[str, str], tz: ZoneInfo):
        if settings.api_key is None:
            raise WeatherError('[weather] needs api_key = { env = "..." } (or { file = "..." })')
        self.settings, self.tz = settings, tz
        self._key = settings.api_key.resolve(environ)
        logging.getLogger("httpx").addFilter(_MASK)  # the same filter object: added once however many clients

    def advisories(self) -> list[Advisory]:
        try:
            response = httpx.get(
                self.settings.base_url,
                params={"fe": "f", "tm": "", "disp": "1", "help": "1", "authKey": self._key},
                timeout=self.settings.timeout_seconds,
            )
        except httpx.HTTPError as exc:  # its text never holds the URL, so never the key
            raise WeatherError(f"KMA {self.settings.base_url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise WeatherError(
                f"KMA {self.settings.base_url}: HTTP {response.status_code}: {response.text[:200].strip()}"
            )
        return parse_advisories(response.text, self.tz)


def parse_advisories(text: str, tz: ZoneInfo) -> list[Advisory]:
    """The heat and cold wave rows of a 특보 현황 answer; other kinds and lifted advisories are left out."""
    header, found = None, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            names = [n.strip() for n in stripped.lstrip("#").split(",")]
            if "REG_ID" in names:
                header = names
            continue
        if not stripped:
            continue
        if header is None:
            raise WeatherError(f"KMA answer line {number}: a row before the column names (# REG_UP, ..., REG_ID, ...)")
        # Not strict: a KMA row ends in a comma, one cell more than the names.
        row = dict(zip(header, (cell.strip() for cell in stripped.split(",")), strict=False))
        kind = KINDS.get(row.get("WRN", ""))
        if kind is None or row.get("CMD", "") in LIFTED:
            continue
        try:
            issued = datetime.strptime(row["TM_FC"], "%Y%m%d%H%M").replace(tzinfo=tz)
            level = {"1": "주의보", "2": "경보"}.get(row["LVL"], row["LVL"])
            found.append(Advisory(row["REG_ID"], row.get("REG_KO", row["REG_ID"]), kind, level, issued))
        except (KeyError, ValueError) as exc:
            raise WeatherError(f"KMA answer line {number}: cannot read {stripped[:120]!r} ({exc})") from None
    return found


@dataclass
class WeatherCheck:
    advisory: Advisory
    people: int  # people at higher risk it calls
    run_id: int | None  # None: a dry run, or nobody to call
    new: bool  # False: this advisory launched its check before


def check_weather(services, source: WeatherSource, *, dry_run: bool = False) -> list[WeatherCheck]:
    """One poll: each advisory for the office's regions launches its check once; the officers are told."""
    from safecall.escalation import notify_officers
    from safecall.signals import launch_signal_check

    settings = services.instance.settings
    weather, db, now = settings.weather, services.db, services.now()
    services.campaign(weather.campaign)  # a campaign that cannot be loaded fails here, before anything is written
    ours = [a for a in source.advisories() if a.region_id in weather.regions and a.kind in weather.kinds]
    with db.session() as session:
        people = sorted(
            session.exec(
                select(Person.id).where(Person.status == PersonStatus.ACTIVE, Person.risk >= weather.min_risk)
            ).all()
        )
        launched = {
            r.label: r.id for r in session.exec(select(CampaignRun).where(CampaignRun.label.startswith("weather-")))
        }
    checks = []
    for advisory in ours:
        label = f"weather-{advisory.key}"
        if label in launched or dry_run or not people:
            checks.append(WeatherCheck(advisory, len(people), launched.get(label), False))
            continue
        day = now.astimezone(services.instance.tz).date()
        with db.transaction() as session:
            for person_id in people:
                signal = session.exec(
                    select(Signal).where(
                        Signal.person_id == person_id, Signal.day == day, Signal.kind == WEATHER_SIGNAL
                    )
                ).first()
                session.add(
                    signal or Signal(person_id=person_id, day=day, kind=WEATHER_SIGNAL, score=1.0, imported_at=now)
                )
            audit(
                session,
                at=now,
                action="weather.advisory",
                subject=advisory.key,
                actor="safecall",
                detail=f"{advisory.kind} {advisory.level}; people={len(people)}",
            )
        check = launch_signal_check(services, weather.campaign, day, kinds={WEATHER_SIGNAL: 0.0}, label=label)
        assert check is not None  # its people were given a weather signal just now: they are flagged
        notify_officers(
            db,
            settings,
            [],
            key=f"weather:{advisory.key}",
            now=now,
            body=f"[안심콜] 기상특보 안부 확인: {advisory.korean()} "
            f"({advisory.issued_at.astimezone(services.instance.tz):%m/%d %H:%M} 발표). 고위험 대상자 "
            f"{check.people}명에게 확인 전화를 겁니다 (실행 {check.run.id}).\n{settings.web.base_url}/progress",
        )
        log_event(log, "weather_check_launched", advisory=advisory.key, run=check.run.id, people=check.people)
        checks.append(WeatherCheck(advisory, check.people, check.run.id, True))
    return checks


def build_weather(instance) -> WeatherSource | None:
    weather = instance.settings.weather
    return KmaWeather(weather, instance.environ, instance.tz) if weather.enabled else None
