"""The simulated trunk's settings ([trunks.NAME] with type = "simulated"): read with the other settings, so apart
from the trunk itself (which needs the IVR conversation)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from safecall.configfiles import Strict

# What a person does when called ("say:TEXT:CONFIDENCE" in a script: answers aloud, where the trunk listens).
BEHAVIOURS = {
    "ack": "answers and presses 1",
    "help": "answers and presses 2",
    "no_key": "answers and never presses a key",
    "hangup": "answers and hangs up during the greeting",
    "no_answer": "lets it ring",
    "busy": "is on the phone",
    "congestion": "cannot be reached (network congestion)",
    "machine": "an answering machine picks up",
}


def parse_spoken(behaviour: str) -> tuple[str, float]:
    """(text, confidence) of a scripted "say:TEXT:CONFIDENCE"; ValueError when the confidence is not a number."""
    text, _, confidence = behaviour.removeprefix("say:").rpartition(":")
    return text, float(confidence)


def spoken_ok(behaviour: str) -> bool:
    try:
        return behaviour.startswith("say:") and ":" in behaviour[4:] and parse_spoken(behaviour)[1] >= 0
    except ValueError:
        return False


def default_mix() -> dict[str, float]:
    return {"ack": 80, "help": 2, "no_key": 5, "no_answer": 9, "busy": 2, "machine": 1, "hangup": 1}


class SimulatedTrunkConfig(Strict):
    type: Literal["simulated"]
    channels: int = Field(default=30, ge=1, le=10_000)
    calls_per_second: float = Field(default=5.0, gt=0, le=1000)
    seed: int = Field(default=2026, ge=0, le=2**32)
    # Per-call behaviour weights for people without a script.
    mix: dict[str, Annotated[float, Field(ge=0, le=1_000_000)]] = Field(default_factory=default_mix)
    # Share (percent) of people who answer no call at all that week, and of numbers that do not exist.
    away_percent: float = Field(default=3.0, ge=0, le=100)
    invalid_percent: float = Field(default=1.0, ge=0, le=100)
    # "mix": every call drawn afresh from `mix`; "persistent": people with habits that last from week to week
    # (safecall/telephony/simulated_people.py), for the multi-week benchmarks. Scripts come first either way.
    people: Literal["mix", "persistent"] = "mix"
    # Scripted behaviour per E.164 number, one entry per attempt; the last repeats.
    scripts: dict[str, list[str]] = Field(default_factory=dict)
    # For drills: append every placed call to this JSON-lines file (relative to the instance).
    placed_log: str | None = None

    @model_validator(mode="after")
    def _behaviours_known(self) -> SimulatedTrunkConfig:
        for name in self.mix:
            if name not in BEHAVIOURS:
                raise ValueError(f"mix: unknown behaviour {name!r} (known: {', '.join(sorted(BEHAVIOURS))})")
        if sum(self.mix.values()) <= 0:
            raise ValueError("mix: the weights must add up to more than 0")
        for number, steps in self.scripts.items():
            bad = [s for s in steps if s not in BEHAVIOURS and s != "invalid" and not spoken_ok(s)]
            if bad or not steps:
                raise ValueError(f"scripts.{number}: unknown or empty behaviours {bad}")
        return self
