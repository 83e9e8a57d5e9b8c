"""The IVR flow as data (ivr/*.toml). safecall.conversation walks it, for every trunk alike."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import Field, field_validator, model_validator

from safecall import phones
from safecall.configfiles import Strict, parse_model
from safecall.domain import Disposition
from safecall.errors import ConfigError
from safecall.instancefiles import read_toml
from safecall.policy import CallingCalendar, parse_clock_time

OUTCOMES = ("acknowledged", "help_requested")


class DigitMeaning(Strict):
    outcome: Literal["acknowledged", "help_requested"]
    closing: str


class SpeechAnswers(Strict):
    """Spoken answers where the trunk can hear them (Twilio): the words of each kind and a confidence floor.

    The lists are data, so an office can add its dialect's words; what they mean together is judged by
    safecall.speech.judge (its rules are code). Each phrase matches by its morphemes, so "괜찮아요" also
    matches "괜찮습니다" and "괜찮지 않아요" (a negated one).
    """

    min_confidence: float = Field(default=0.5, ge=0, le=1)
    # An affirmative or a statement of being well ("네", "괜찮아요"); negated, it is a statement of not being well.
    acknowledged: list[str] = Field(min_length=1)
    # Distress or a need ("아파요", "쓰러졌어요"); negated ("안 아파요"), it counts as being well.
    help_requested: list[str] = []
    # Words of suicide or of an emergency: help, marked 위험 발언 for the officer, negated or not.
    risk: list[str] = []
    # Answering the phone, someone else speaking, not an answer ("여보세요", "딸인데요"): asked again.
    unclear: list[str] = []
    # Trouble that, with 없다, means well ("별일 없어요") and, with 있다, means help ("아픈 데가 있어요").
    no_trouble: list[str] = []
    # Necessities whose lack is a need ("약이 없어요", "쌀이 떨어졌어요").
    lacking: list[str] = []
    # Everyday activities that, negated, are a need ("밥을 못 먹었어요", "못 일어나요").
    activities: list[str] = []
    # Words that neither help nor hurt ("저", "요즘", "덕분에"); any word in no list makes the answer unclear.
    neutral: list[str] = []
    # Said after each question on a trunk that listens (not part of recorded prompts).
    prompt_hint: str = ""

    def hints(self) -> str:
        return ", ".join(self.acknowledged + self.help_requested)


class HelpLine(Strict):
    """A human on "help" ([help] in the flow): the duty officer put through in office hours, else a short message.

    `transfer_number` (E.164) is whom a Twilio trunk dials; an Asterisk trunk dials its own `help_dial` dial string
    if it has one, else this number through its `channel`. Without a transfer number the person always leaves a
    message. Office hours are local time in `timezone`, public holidays of `holidays` closed.
    """

    enabled: bool = False  # off until an office turns it on (docs/operations.md)
    transfer_number: str = ""
    office_hours: str = "09:00-18:00"
    office_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]
    holidays: str | None = "KR"  # a country code of the holidays package; none: holidays are office days
    timezone: str = "Asia/Seoul"
    ring_seconds: int = Field(default=20, ge=5, le=60)  # how long the officer's phone rings before the message
    message_seconds: int = Field(default=60, ge=10, le=300)  # the longest message

    @field_validator("transfer_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            return phones.normalise(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a telephone number ({exc})") from None

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        start, dash, end = value.partition("-")
        if not dash:
            raise ValueError(f"{value!r} is not office hours (use HH:MM-HH:MM, e.g. 09:00-18:00)")
        if parse_clock_time(start) >= parse_clock_time(end):
            raise ValueError(f"{value!r}: the start is not before the end")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. Asia/Seoul)") from None
        return value

    @field_validator("holidays")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value and value not in holidays_lib.list_supported_countries():
            raise ValueError(f"{value!r} is not a country the holidays package knows (e.g. KR)")
        return value or None

    def is_open(self, at: datetime) -> bool:
        """Whether the duty officer can be put through at `at` (the injected clock's now):
        office hours, an office day."""
        start, _, end = self.office_hours.partition("-")
        return CallingCalendar.build(
            ZoneInfo(self.timezone), start, end, list(self.office_days), self.holidays
        ).is_open(at)


HELP_PROMPTS = ("help_transfer", "help_no_officer", "help_message")  # [prompts] a flow with [help] must have
HELP_CLOSING = "help_message_thanks"  # [closings]: after a message was left


class IvrFlow(Strict):
    name: str
    language: str = "ko-KR"
    input_timeout_seconds: float = Field(default=5, gt=0, le=30)
    repeats_on_no_input: int = Field(default=2, ge=0, le=5)
    prompts: dict[str, str]
    digits: dict[str, DigitMeaning]
    closings: dict[str, str]
    speech: SpeechAnswers | None = None
    help: HelpLine | None = None

    @field_validator("digits")
    @classmethod
    def _single_keys(cls, digits: dict[str, DigitMeaning]) -> dict[str, DigitMeaning]:
        for key in digits:
            if key not in "0123456789*#" or len(key) != 1:
                raise ValueError(f"{key!r} is not one telephone key (0-9, * or #)")
        if Disposition.ACKNOWLEDGED not in {d.outcome for d in digits.values()}:
            raise ValueError("no digit means 'acknowledged'")
        return digits

    @model_validator(mode="after")
    def _texts_exist(self) -> IvrFlow:
        for key in ("greeting", "repeat"):
            if not self.prompts.get(key, "").strip():
                raise ValueError(f"prompts.{key}: missing or empty")
        if not self.closings.get("no_input", "").strip():
            raise ValueError("closings.no_input: missing or empty")
        for digit, meaning in self.digits.items():
            if meaning.closing not in self.closings:
                raise ValueError(f"digits.{digit}.closing: no closing message named {meaning.closing!r}")
        if self.help is not None and self.help.enabled:
            if not self.meaning_of("help_requested"):
                raise ValueError("help: no digit means 'help_requested', so nobody could ask for the officer")
            for key in HELP_PROMPTS:
                if not self.prompts.get(key, "").strip():
                    raise ValueError(f"prompts.{key}: missing or empty (the [help] section needs it)")
            if not self.closings.get(HELP_CLOSING, "").strip():
                raise ValueError(f"closings.{HELP_CLOSING}: missing or empty (the [help] section needs it)")
        if self.speech and not self.meaning_of("help_requested"):
            raise ValueError(
                "speech: no digit means 'help_requested', so there is no closing for a spoken call for help"
            )
        return self

    @property
    def help_line(self) -> HelpLine | None:
        """The [help] settings when turned on; None: help is only thanked (the call-back task is made either way)."""
        return self.help if self.help is not None and self.help.enabled else None

    def office_open(self, at: datetime) -> bool:
        """Whether a call for help at `at` (the injected clock's now) may be put through: help on, office hours hold."""
        return self.help_line is not None and self.help_line.is_open(at)

    def meaning_of(self, outcome: str) -> DigitMeaning | None:
        return next((m for m in self.digits.values() if m.outcome == outcome), None)

    def texts(self) -> dict[str, str]:
        """Every prompt and closing by its audio name, e.g. 'prompt-greeting'."""
        named = {f"prompt-{k}": v for k, v in self.prompts.items()}
        named.update({f"closing-{k}": v for k, v in self.closings.items()})
        return named


def load_flow(ivr_dir: Path, name: str) -> IvrFlow:
    path = ivr_dir / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in ivr_dir.glob("*.toml"))) or "none"
        raise ConfigError(f"{path}: no IVR flow named {name!r} (flows: {known})")
    flow = parse_model(IvrFlow, read_toml(path), path)
    if flow.name != name:
        raise ConfigError(f"{path}: key 'name': is {flow.name!r} but the file is {name}.toml")
    return flow


def speaking_seconds(text: str) -> float:
    """A rough Korean TTS duration: about 7 syllables a second."""
    return max(1.0, len(text.replace(" ", "")) / 7.0)
