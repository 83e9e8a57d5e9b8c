"""Instance folders and their settings: config/safecall.toml and config/trunks.toml.

Secrets never sit in these files: a secret is a reference to an environment
variable or a secret file, resolved only when a trunk or database needs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays.registry import EntityLoader
from pydantic import BaseModel, Field, field_validator, model_validator

from safecall import phones
from safecall.configfiles import SecretRef, Strict, parse_model, validation_problems  # noqa: F401 (re-exported)
from safecall.dburl import mask_url, url_secrets  # noqa: F401  (settings shows and checks URLs)
from safecall.errors import ConfigError, Message
from safecall.i18n import N_
from safecall.instancefiles import CONFIG_ENV, configured_language, locate_instance, read_toml  # noqa: F401 (re-exported)
from safecall.telephony.kinds import parse_trunk

DATABASE_URL_ENV = "SAFECALL_DATABASE_URL"
INSTANCE_FOLDERS = ("config", "campaigns", "ivr")


def korean_number(value: str | None) -> str | None:
    """A settings phone number: checked as a Korean number (the ValueError says why), kept as written;
    None stays None."""
    if value is not None:
        phones.normalise(value)
    return value


def https_or_loopback(value: str) -> str:
    parts = urlsplit(value)
    # The API key's signature goes with every request: only over TLS, or to this machine (a test's fake).
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")):
        raise ValueError(Message(N_("{value!r} must be an https:// URL"), value=value))
    return value.rstrip("/")


class Team(Strict):
    name: str = Field(min_length=1)
    dongs: list[str] = Field(default_factory=list)
    email: str | None = None
    officer_email: str | None = None
    lead_email: str | None = None  # the team lead: the safety clock's third rung (else the officer again)
    # The officer's mobile: a campaign that cannot run at its slot is also texted here ([sms] provider).
    officer_phone: str | None = None

    _korean_number = field_validator("officer_phone")(korean_number)


class SmtpSettings(Strict):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    sender: str
    timeout_seconds: float = Field(default=15, gt=0, le=300)


class DeliverySettings(Strict):
    publish_at: str = "08:00"  # local time the daily lists go out
    retry_minutes: int = Field(default=10, ge=1, le=1440)
    max_attempts: int = Field(default=6, ge=1, le=100)  # then it is reported as failed (and still retried, hourly)
    # Lists hold personal data: e-mails carry counts and a link to the web page. An office may attach the list as an
    # XLSX encrypted with this password, which it hands to the teams another way (it is never in an e-mail).
    attachments: bool = False
    attachment_password: SecretRef | None = None

    @model_validator(mode="after")
    def _password_for_attachments(self) -> DeliverySettings:
        if self.attachments and self.attachment_password is None:
            raise ValueError(
                Message(N_('attachments = true needs attachment_password = { env = "..." } (or { file = "..." })'))
            )
        return self


class WebSettings(Strict):
    """`safecall web`: behind a TLS reverse proxy in production (docs/web.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    base_url: str = "http://127.0.0.1:8080"  # the address people open; links in e-mails point here
    secret_key: SecretRef = Field(default_factory=lambda: SecretRef(env="SAFECALL_WEB_SECRET"))  # signs session cookies
    session_minutes: int = Field(default=480, ge=5, le=1440)  # a session ends this long after login
    secure_cookies: bool = True  # cookies only over HTTPS; false only for a trial on 127.0.0.1 without the proxy
    login_attempts: int = Field(default=5, ge=1, le=100)  # failed logins per user name (and per address) ...
    login_window_minutes: int = Field(default=15, ge=1, le=1440)  # ... within this long before logins are refused

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class TestingSettings(Strict):
    """Only for test instances that dial stand-ins on loopback in real time: never on one that calls people."""

    fast_retries: bool = False  # campaigns may retry sooner than campaign.MIN_RETRY_SPACING (e.g. "0m")


class VisitSettings(Strict):
    overdue_after_hours: int = Field(default=48, ge=1, le=24 * 31)


class SafetyClockSettings(Strict):
    """The safety clock's ladder (safety_clock.py): hours from a person's last unanswered call, or their request for
    help, with no outcome recorded by a human, before each rung. The last rung only recommends that a person ask
    119 or 112 for a safety check; SafeCall never asks them itself."""

    enabled: bool = True
    guardian_after_hours: float = Field(default=4, ge=1, le=24 * 14)
    officer_after_hours: float = Field(default=8, ge=1, le=24 * 14)
    team_lead_after_hours: float = Field(default=24, ge=1, le=24 * 14)
    safety_check_after_hours: float = Field(default=48, ge=1, le=24 * 14)

    @model_validator(mode="after")
    def _rising(self) -> SafetyClockSettings:
        hours = [
            self.guardian_after_hours,
            self.officer_after_hours,
            self.team_lead_after_hours,
            self.safety_check_after_hours,
        ]
        if hours != sorted(hours):
            raise ValueError(
                Message(
                    N_(
                        "the rungs must come in order: guardian_after_hours <= officer_after_hours <= "
                        "team_lead_after_hours <= safety_check_after_hours"
                    )
                )
            )
        return self


class AlimtalkSettings(Strict):
    """알림톡 through SOLAPI: the office's Kakao channel and its approved templates, one per guardian text.

    Each template is registered with Kakao using the variables #{이름} and #{회신번호}; SOLAPI sends it as an
    SMS/LMS from the sender number when the guardian cannot get 알림톡."""

    pf_id: str = Field(min_length=1)  # the channel's SOLAPI id (KA01PF...)
    guardian_unreachable: str | None = None  # template ids (KA01TP...); a text with no template goes as SMS/LMS
    guardian_help: str | None = None
    precall_notice: str | None = None  # the pre-call notice: #{이름}, #{시각} and #{발신번호}
    checkin_link: str | None = None  # the one-tap check-in link: #{이름} and #{링크}


class SmsSettings(Strict):
    # solapi: domestic SMS/LMS and 알림톡 from a registered 발신번호. twilio: Twilio Messaging, which Korean
    # phones show as [국제발신] from an unknown number. The e-mail-to-SMS gateway was removed: Korean carriers
    # have none.
    provider: Literal["none", "solapi", "twilio"] = "none"
    # The office's number written into guardian texts ({callback}), so a worried guardian can call back.
    callback_number: str | None = None
    # The duty officer's mobile: texted at once when a spoken answer has words of suicide or an emergency (위험 발언).
    duty_officer: str | None = None
    api_key: SecretRef | None = None
    api_secret: SecretRef | None = None
    sender: str | None = None  # 발신번호 registered with SOLAPI (발신번호 사전등록), e.g. 02-2148-1234
    base_url: str = "https://api.solapi.com"
    alimtalk: AlimtalkSettings | None = None
    twilio_trunk: str | None = None

    @field_validator("provider", mode="before")
    @classmethod
    def _no_gateway(cls, value):
        if value == "email_gateway":
            raise ValueError(
                Message(
                    N_(
                        "email_gateway is not for Korea (Korean carriers offer no e-mail-to-SMS gateway) "
                        'and was removed; use provider = "solapi" (see docs/operations.md)'
                    )
                )
            )
        return value

    _korean_number = field_validator("callback_number", "sender", "duty_officer")(korean_number)

    _https_or_loopback = field_validator("base_url")(https_or_loopback)

    @model_validator(mode="after")
    def _complete(self) -> SmsSettings:
        if self.provider == "solapi":
            missing = [k for k in ("api_key", "api_secret", "sender", "callback_number") if getattr(self, k) is None]
            if missing:
                raise ValueError(Message(N_("provider solapi needs {missing}"), missing=", ".join(missing)))
        if self.provider == "twilio" and not self.twilio_trunk:
            raise ValueError(Message(N_("twilio_trunk must name a twilio trunk for provider twilio")))
        if self.alimtalk and self.provider != "solapi":
            raise ValueError(Message(N_("[sms.alimtalk] needs provider solapi")))
        return self

    def callback(self) -> str:
        """The office's number as guardians read it in a text (02-2148-1234), or empty when none is set."""
        return phones.national(phones.normalise(self.callback_number)) if self.callback_number else ""


class BackupSettings(Strict):
    """The scheduler's daily backup of the database (`safecall backup` takes one by hand)."""

    daily: bool = False
    at: str = "02:30"  # local time of day
    keep: int = Field(default=14, ge=1, le=3650)  # the newest this many stay; older ones are deleted
    folder: str = "backups"  # inside the instance unless absolute; owner-only

    @field_validator("at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        from safecall.policy import parse_clock_time

        parse_clock_time(value)
        return value


class CheckinSettings(Strict):
    """One-tap check-in links by text, and the pre-call notice (docs/operations.md); both off by default."""

    # Links: first channel for people whose roster says 연락 방법 문자, and a follow-up after two unanswered calls.
    links: bool = False
    link_hours: int = Field(default=48, ge=1, le=24 * 7)  # a link works this long after it was made
    text_first_hours: int = Field(default=2, ge=0, le=24)  # 연락 방법 문자: their first call waits this long for a tap
    # A 알림톡 (or text) on the morning of a person's first call of the week: when, and from which number.
    precall_notice: bool = False
    precall_hour: int = Field(default=8, ge=0, le=23)  # sent from this local hour of the day of the first call
    caller_number: str | None = None  # the number people see when the district calls (default: sms.callback_number)

    _korean_number = field_validator("caller_number")(korean_number)


class SignalSettings(Strict):
    # A signal at or above its kind's threshold flags the person for an ad-hoc check call.
    thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {"power": 0.8, "telecom": 0.8, "app": 0.8}
    )


WeatherKind = Literal["heat", "cold"]
WEATHER_KINDS: tuple[WeatherKind, ...] = ("heat", "cold")


class WeatherSettings(Strict):
    """Weather-triggered checks (weather.py): the KMA API hub's 특보 현황, polled by the scheduler."""

    enabled: bool = False
    campaign: str | None = None  # whose IVR, trunk and retry rules the check calls use
    regions: list[str] = Field(default_factory=list)  # KMA 특보구역 codes of the office's district, e.g. L1100200
    kinds: list[WeatherKind] = Field(default_factory=lambda: list(WEATHER_KINDS))
    min_risk: int = Field(default=3, ge=1, le=3)  # people at this risk (roster 위험도: 1 하, 2 중, 3 상) or higher
    api_key: SecretRef | None = None  # the API hub's authKey
    base_url: str = "https://apihub.kma.go.kr/api/typ01/url/wrn_now_data.php"
    poll_minutes: int = Field(default=30, ge=5, le=1440)
    timeout_seconds: float = Field(default=15, gt=0, le=120)

    _https_or_loopback = field_validator("base_url")(https_or_loopback)

    @model_validator(mode="after")
    def _complete(self) -> WeatherSettings:
        if self.enabled and not (self.campaign and self.regions and self.api_key):
            raise ValueError(Message(N_('enabled = true needs campaign, regions and api_key = { env = "..." }')))
        return self


class Settings(Strict):
    # Messages and help when the locale does not choose (C.UTF-8, the usual server default, does not).
    language: Literal["ko", "en"] = "ko"
    database_url: str | SecretRef = "sqlite:///data/safecall.db"
    # How long to wait for another process's lock on SQLite before giving up with a clear error.
    sqlite_busy_timeout_seconds: float = Field(default=30, gt=0, le=600)
    timezone: str = "Asia/Seoul"
    holiday_country: str = "KR"
    outbox: str = "outbox"
    teams: list[Team] = Field(default_factory=list)
    smtp: SmtpSettings | None = None
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    visits: VisitSettings = Field(default_factory=VisitSettings)
    safety_clock: SafetyClockSettings = Field(default_factory=SafetyClockSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    signals: SignalSettings = Field(default_factory=SignalSettings)
    checkin: CheckinSettings = Field(default_factory=CheckinSettings)
    weather: WeatherSettings = Field(default_factory=WeatherSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(Message(N_("unknown time zone {value!r}"), value=value)) from exc
        return value

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        # The registry's codes (aliases included), not list_supported_countries(), which imports every country's module.
        if value not in EntityLoader.get_country_codes(include_aliases=True):
            raise ValueError(Message(N_("the holidays package has no country {value!r}"), value=value))
        return value

    @field_validator("database_url")
    @classmethod
    def _no_inline_password(cls, value):
        if isinstance(value, str) and url_secrets(value):
            raise ValueError(Message(N_('a password may not be written in the file; use database_url = {env = "..."}')))
        return value

    @model_validator(mode="after")
    def _teams_distinct(self) -> Settings:
        seen_names: set[str] = set()
        owner_of_dong: dict[str, str] = {}
        for team in self.teams:
            if team.name in seen_names:
                raise ValueError(Message(N_("team {team!r} is defined twice"), team=team.name))
            seen_names.add(team.name)
            for dong in team.dongs:
                if dong in owner_of_dong:
                    raise ValueError(
                        Message(
                            N_("dong {dong!r} belongs to both {owner!r} and {other!r}"),
                            dong=dong,
                            owner=owner_of_dong[dong],
                            other=team.name,
                        )
                    )
                owner_of_dong[dong] = team.name
        return self

    def team_for_dong(self, dong: str) -> str | None:
        return next((t.name for t in self.teams if dong in t.dongs), None)


class TrunksFile(Strict):
    default: str = "simulated"
    # Each table is validated by its kind's own model (telephony/kinds.py): settings know no trunk kind.
    trunks: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_exists(self) -> TrunksFile:
        if self.default not in self.trunks:
            raise ValueError(
                Message(N_("default trunk {default!r} is not defined under [trunks]"), default=self.default)
            )
        return self


@dataclass(frozen=True)
class Instance:
    """One office's folder: its settings, trunks, campaigns, IVR flows, data and outbox."""

    root: Path
    settings: Settings
    trunks: TrunksFile
    environ: Mapping[str, str]

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def campaigns_dir(self) -> Path:
        return self.root / "campaigns"

    @property
    def ivr_dir(self) -> Path:
        return self.root / "ivr"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def backup_dir(self) -> Path:
        return (self.root / self.settings.backup.folder).absolute()

    @property
    def outbox(self) -> Path:
        return (self.root / self.settings.outbox).absolute()

    def database_url(self) -> str:
        """The URL with any secret resolved; relative SQLite paths are inside the instance."""
        url = self.environ.get(DATABASE_URL_ENV) or self.settings.database_url
        if isinstance(url, SecretRef):
            url = url.resolve(self.environ)
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            url = prefix + str((self.root / url[len(prefix) :]).absolute())
        return url

    def trunk(self, name: str | None = None):
        name = name or self.trunks.default
        try:
            return self.trunks.trunks[name]
        except KeyError:
            known = ", ".join(sorted(self.trunks.trunks)) or "none"
            raise ConfigError(
                N_("{file}: no trunk named {name!r} (defined: {known})"),
                file=self.config_dir / "trunks.toml",
                name=name,
                known=known,
            ) from None


def load_instance(root: Path, environ: Mapping[str, str] | None = None) -> Instance:
    environ = dict(os.environ if environ is None else environ)
    settings_path = root / "config" / "safecall.toml"
    trunks_path = root / "config" / "trunks.toml"
    if not settings_path.exists():
        raise ConfigError(
            N_(
                "{path}: file not found. "
                "Create an instance with 'safecall init DIR' and select it with --config DIR or {variable}."
            ),
            path=settings_path,
            variable=CONFIG_ENV,
        )
    settings = parse_model(Settings, read_toml(settings_path), settings_path)
    raw_trunks = read_toml(trunks_path)
    if isinstance(raw_trunks.get("trunks"), dict):  # each table by its kind's own model, before the file as a whole
        raw_trunks["trunks"] = {
            name: parse_trunk(name, data, trunks_path) for name, data in raw_trunks["trunks"].items()
        }
    trunks = parse_model(TrunksFile, raw_trunks, trunks_path)
    return Instance(root=root.absolute(), settings=settings, trunks=trunks, environ=environ)


def defaults_root() -> Path:
    return Path(str(resources.files("safecall") / "defaults"))


def scaffold_instance(target: Path) -> list[Path]:
    """Copy the shipped defaults into a new instance folder; never overwrite."""
    if (target / "config" / "safecall.toml").exists():
        raise ConfigError(N_("{target}: already holds an instance (config/safecall.toml exists)"), target=target)
    source = defaults_root()
    created = []
    for folder in INSTANCE_FOLDERS:
        destination = target / folder
        shutil.copytree(source / folder, destination, dirs_exist_ok=True)
        created.append(destination)
    return created


def _masked(model: BaseModel | None) -> dict[str, Any] | None:
    if model is None:
        return None
    return {
        key: (
            f"<secret {value.describe()}>"
            if isinstance(value, SecretRef)
            else _masked(value)
            if isinstance(value, BaseModel)
            else value
        )
        for key, value in ((k, getattr(model, k)) for k in type(model).model_fields)
    }


def show_settings(instance: Instance) -> dict[str, Any]:
    """The effective settings with every secret masked, for `config show`."""
    url = instance.environ.get(DATABASE_URL_ENV) or instance.settings.database_url
    shown_url = f"<secret {url.describe()}>" if isinstance(url, SecretRef) else mask_url(instance.database_url())
    trunks = {}
    for name, trunk in instance.trunks.trunks.items():
        trunks[name] = _masked(trunk)
    return {
        "instance": str(instance.root),
        "database_url": shown_url,
        "timezone": instance.settings.timezone,
        "holiday_country": instance.settings.holiday_country,
        "outbox": str(instance.outbox),
        "teams": [team.model_dump() for team in instance.settings.teams],
        "smtp": _masked(instance.settings.smtp),
        "delivery": _masked(instance.settings.delivery),
        "web": _masked(instance.settings.web),
        "backup": instance.settings.backup.model_dump(),
        "visits": instance.settings.visits.model_dump(),
        "safety_clock": instance.settings.safety_clock.model_dump(),
        "sms": _masked(instance.settings.sms),
        "signals": instance.settings.signals.model_dump(),
        "weather": _masked(instance.settings.weather),
        "default_trunk": instance.trunks.default,
        "trunks": trunks,
    }
