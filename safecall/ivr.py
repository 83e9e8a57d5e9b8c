"""The IVR flow as data (ivr/*.toml). safecall.conversation walks it, for every trunk alike."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from safecall.errors import ConfigError
from safecall.configfiles import Strict, parse_model
from safecall.instancefiles import read_toml

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


class IvrFlow(Strict):
    name: str
    language: str = "ko-KR"
    input_timeout_seconds: float = Field(default=5, gt=0, le=30)
    repeats_on_no_input: int = Field(default=2, ge=0, le=5)
    prompts: dict[str, str]
    digits: dict[str, DigitMeaning]
    closings: dict[str, str]
    speech: SpeechAnswers | None = None

    @field_validator("digits")
    @classmethod
    def _single_keys(cls, digits: dict[str, DigitMeaning]) -> dict[str, DigitMeaning]:
        for key in digits:
            if key not in "0123456789*#" or len(key) != 1:
                raise ValueError(f"{key!r} is not one telephone key (0-9, * or #)")
        if "acknowledged" not in {d.outcome for d in digits.values()}:
            raise ValueError("no digit means 'acknowledged'")
        return digits

    @model_validator(mode="after")
    def _texts_exist(self) -> "IvrFlow":
        for key in ("greeting", "repeat"):
            if not self.prompts.get(key, "").strip():
                raise ValueError(f"prompts.{key}: missing or empty")
        if not self.closings.get("no_input", "").strip():
            raise ValueError("closings.no_input: missing or empty")
        for digit, meaning in self.digits.items():
            if meaning.closing not in self.closings:
                raise ValueError(f"digits.{digit}.closing: no closing message named {meaning.closing!r}")
        if self.speech and not self.meaning_of("help_requested"):
            raise ValueError("speech: no digit means 'help_requested', so there is no closing for a spoken call for help")
        return self

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
