"""Campaign definitions (campaigns/*.toml) and their validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from safecall.configfiles import coercion_problems
from safecall.domain import Disposition
from safecall.errors import ConfigError, InputError, Message
from safecall.i18n import N_
from safecall.ivr import load_flow
from safecall.policy import WEEKDAYS, CallingCalendar, parse_clock_time, parse_spacing
from safecall.settings import Instance, Strict, read_toml, validation_problems
from safecall.sms_text import GUARDIAN_TEXTS, SMS_LIMIT_BYTES, euc_kr_bytes

MIN_RETRIES = 3
# Retries closer than this are not spaced: four calls within minutes miss a person who is out for an hour.
MIN_RETRY_SPACING = timedelta(minutes=30)
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
RETRYABLE: tuple[str, ...] = (
    Disposition.ANSWERED_NO_KEY,
    Disposition.NO_ANSWER,
    Disposition.BUSY,
    Disposition.FAILED,
    Disposition.MACHINE,
    Disposition.INVALID_NUMBER,
    Disposition.UNKNOWN,
)


def _check_time(value: str) -> str:
    parse_clock_time(value)
    return value


class Targets(Strict):
    """Who is called. Empty lists mean no restriction; all given lists must match."""

    teams: list[str] = Field(default_factory=list)
    dongs: list[str] = Field(default_factory=list)
    risks: list[Literal["low", "medium", "high"]] = Field(default_factory=list)

    def risk_levels(self) -> list[int]:
        return [{"low": 1, "medium": 2, "high": 3}[r] for r in self.risks]


class Slot(Strict):
    weekday: Weekday
    start: str
    # "history": first calls ordered by last weeks' outcomes, likely non-responders first (safecall/ordering.py);
    # "due": everyone due at the first slot, called in roster order.
    first_calls: Literal["history", "due"] = "history"

    _time = field_validator("start")(_check_time)


class Window(Strict):
    start: str = "09:00"
    end: str = "18:00"
    weekdays: list[Weekday] = Field(default_factory=lambda: list(WORKDAYS), min_length=1)
    skip_holidays: bool = True

    _times = field_validator("start", "end")(_check_time)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if parse_clock_time(self.start) >= parse_clock_time(self.end):
            raise ValueError(Message(N_("start {start} is not before end {end}"), start=self.start, end=self.end))
        return self


class CallLimits(Strict):
    ring_timeout_seconds: int = Field(default=30, ge=5, le=120)
    max_call_seconds: int = Field(default=180, ge=30, le=1800)


class RetryPolicy(Strict):
    max_retries: int = Field(default=3, le=20)
    spacing: list[str] = Field(default_factory=lambda: ["1h", "3h", "next_day"], min_length=1)
    retry_on: list[str] = Field(default_factory=lambda: list(RETRYABLE))

    @field_validator("max_retries")
    @classmethod
    def _at_least_three(cls, value: int) -> int:
        if value < MIN_RETRIES:
            raise ValueError(
                Message(
                    N_("{value} retries is fewer than the {least} every non-responder is owed"),
                    value=value,
                    least=MIN_RETRIES,
                )
            )
        return value

    @field_validator("spacing")
    @classmethod
    def _spacings(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_spacing(value)
        return values

    @field_validator("retry_on")
    @classmethod
    def _dispositions(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in RETRYABLE:
                raise ValueError(
                    Message(
                        N_("{value!r} cannot be retried (retryable: {retryable})"),
                        value=value,
                        retryable=", ".join(RETRYABLE),
                    )
                )
        return values


class Notify(Strict):
    """Whether guardians get a text when the person becomes a final non-responder or presses 2: one a week at most.

    {name} is the person's name, {callback} the office's number ([sms] callback_number). A text of at most 90
    EUC-KR bytes is one SMS; a longer one is an LMS, refused unless allow_lms says it was meant."""

    guardian_sms: bool = False
    guardian_unreachable: str = "[안심콜] {name}님이 안부 전화에 응답하지 않아 담당자가 방문합니다. 문의 {callback}"
    guardian_help: str = "[안심콜] {name}님이 안부 전화로 도움을 요청해 오늘 연락드립니다. 문의 {callback}"
    allow_lms: bool = False

    @field_validator("guardian_unreachable", "guardian_help")
    @classmethod
    def _only_name_and_callback(cls, value: str) -> str:
        try:
            value.format(name="홍길동", callback="02-123-4567")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                Message(N_("the template may use only {{name}} and {{callback}} ({exc})"), exc=exc)
            ) from None
        return value


# A usual three-syllable name: the text for a longer one may still go as LMS, which is counted at sending.
SAMPLE_NAME = "홍길동"


def guardian_text_problems(path: Path, notify: Notify, instance: Instance) -> list[Message]:
    """What keeps guardian texts from going out as one SMS with the office's number in it."""
    if not notify.guardian_sms:
        return []
    sms = instance.settings.sms
    settings_file = instance.config_dir / "safecall.toml"
    if sms.provider == "none":
        return [
            Message(
                N_("{path}: key 'notify.guardian_sms': no SMS provider in {settings_file} ([sms] provider)"),
                path=path,
                settings_file=settings_file,
            )
        ]
    if not sms.callback_number:
        return [
            Message(
                N_(
                    "{path}: key 'notify.guardian_sms': "
                    "guardian texts need the office's number, [sms] callback_number in {settings_file}"
                ),
                path=path,
                settings_file=settings_file,
            )
        ]
    callback = sms.callback()
    problems = []
    for key in GUARDIAN_TEXTS:
        template = getattr(notify, key)
        if "{callback}" not in template:
            problems.append(
                Message(
                    N_("{path}: key 'notify.{key}': must contain {{callback}}, the office's number to call back"),
                    path=path,
                    key=key,
                )
            )
        size = euc_kr_bytes(template.format(name=SAMPLE_NAME, callback=callback))
        if size > SMS_LIMIT_BYTES and not notify.allow_lms:
            problems.append(
                Message(
                    N_(
                        "{path}: key 'notify.{key}': {size} bytes in EUC-KR for {sample} and {callback}, "
                        "over the {most} of one SMS; shorten it, or set notify.allow_lms = true to send it as LMS"
                    ),
                    path=path,
                    key=key,
                    size=size,
                    sample=SAMPLE_NAME,
                    callback=callback,
                    most=SMS_LIMIT_BYTES,
                )
            )
    return problems


def spacing_problems(path: Path, retry: RetryPolicy, instance: Instance) -> list[Message]:
    """Each retry spacing under MIN_RETRY_SPACING (a test instance's [testing] fast_retries allows it)."""
    if instance.settings.testing.fast_retries:
        return []
    problems = []
    for index, value in enumerate(retry.spacing):
        gap = parse_spacing(value)
        if gap is not None and gap < MIN_RETRY_SPACING:
            problems.append(
                Message(
                    N_(
                        "{path}: key 'retry.spacing': {value!r} (entry {number}) is under {least} minutes; "
                        "retries closer than that are not spaced (use e.g. 30m, 1h or next_day)"
                    ),
                    path=path,
                    value=value,
                    number=index + 1,
                    least=int(MIN_RETRY_SPACING.total_seconds() // 60),
                )
            )
    return problems


class CampaignDef(Strict):
    name: str
    description: str = ""
    trunk: str | None = None  # None: the default trunk
    ivr_flow: str = "safe-call"
    targets: Targets = Field(default_factory=Targets)
    schedule: Slot
    window: Window = Field(default_factory=Window)
    call: CallLimits = Field(default_factory=CallLimits)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    notify: Notify = Field(default_factory=Notify)

    def calendar(self, instance: Instance) -> CallingCalendar:
        country = instance.settings.holiday_country if self.window.skip_holidays else None
        return CallingCalendar.build(
            instance.tz, self.window.start, self.window.end, list(self.window.weekdays), country
        )


def campaign_path(instance: Instance, name: str) -> Path:
    return instance.campaigns_dir / f"{name}.toml"


def list_campaigns(instance: Instance) -> list[str]:
    return sorted(path.stem for path in instance.campaigns_dir.glob("*.toml"))


def check_campaign(instance: Instance, name: str) -> tuple[CampaignDef | None, list[str]]:
    """The definition and every problem found in it, each naming the file and key."""
    path = campaign_path(instance, name)
    if not path.exists():
        return None, [
            Message(
                N_("{path}: no campaign named {name!r} (campaigns: {campaigns})"),
                path=path,
                name=name,
                campaigns=", ".join(list_campaigns(instance)) or "none",
            )
        ]
    try:
        data = read_toml(path)
    except ConfigError as exc:
        return None, [exc.message()]
    try:
        definition = CampaignDef.model_validate(data)
    except ValidationError as exc:
        return None, validation_problems(path, exc)
    problems = coercion_problems(CampaignDef, data, path)
    if definition.name != name:
        problems.append(
            Message(
                N_("{path}: key 'name': is {given!r} but the file is {name}.toml"),
                path=path,
                given=definition.name,
                name=name,
            )
        )
    try:
        instance.trunk(definition.trunk)
    except ConfigError as exc:
        problems.append(Message(N_("{path}: key 'trunk': {exc}"), path=path, exc=exc))
    try:
        load_flow(instance.ivr_dir, definition.ivr_flow)
    except ConfigError as exc:
        problems.append(Message(N_("{path}: key 'ivr_flow': {exc}"), path=path, exc=exc))
    known_teams = {team.name for team in instance.settings.teams}
    for team in definition.targets.teams:
        if team not in known_teams:
            problems.append(
                Message(
                    N_("{path}: key 'targets.teams': no team {team!r} in config/safecall.toml"), path=path, team=team
                )
            )
    problems += guardian_text_problems(path, definition.notify, instance)
    problems += spacing_problems(path, definition.retry, instance)
    window = definition.window
    if definition.schedule.weekday not in window.weekdays:
        problems.append(
            Message(
                N_("{path}: key 'schedule.weekday': {weekday} is not a calling weekday ({weekdays})"),
                path=path,
                weekday=definition.schedule.weekday,
                weekdays=", ".join(window.weekdays),
            )
        )
    slot = parse_clock_time(definition.schedule.start)
    if not parse_clock_time(window.start) <= slot < parse_clock_time(window.end):
        problems.append(
            Message(
                N_("{path}: key 'schedule.start': {start} is outside the window {window_start}-{window_end}"),
                path=path,
                start=definition.schedule.start,
                window_start=window.start,
                window_end=window.end,
            )
        )
    return definition, problems


def load_campaign(instance: Instance, name: str) -> CampaignDef:
    definition, problems = check_campaign(instance, name)
    if problems:
        raise InputError(N_("campaign {name!r} is not valid"), problems, name=name)
    assert definition is not None  # check_campaign gives one whenever it finds no problem
    return definition


__all__ = [
    "CampaignDef",
    "MIN_RETRIES",
    "MIN_RETRY_SPACING",
    "RETRYABLE",
    "WEEKDAYS",
    "check_campaign",
    "list_campaigns",
    "load_campaign",
]
