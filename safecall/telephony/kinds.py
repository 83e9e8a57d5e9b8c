"""The kinds of trunk, found by the `type` key of a [trunks.NAME] table: their settings models, read with the other
settings. The trunks themselves (each package's KIND, a TrunkKind) are built by services.py, the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from safecall.configfiles import validation_problems
from safecall.errors import ConfigError
from safecall.telephony.asterisk.config import AsteriskTrunkConfig
from safecall.telephony.simulated_config import SimulatedTrunkConfig
from safecall.telephony.twilio.config import TwilioTrunkConfig

CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "simulated": SimulatedTrunkConfig,
    "asterisk": AsteriskTrunkConfig,
    "twilio": TwilioTrunkConfig,
}


def parse_trunk(name: str, data: Any, path: Path):
    """One [trunks.NAME] table as its kind's settings; problems name the file and the key."""
    type_name = data.get("type") if isinstance(data, dict) else None
    if type_name not in CONFIG_MODELS:
        raise ConfigError(
            f"{path}: key 'trunks.{name}.type': {type_name!r} is not a trunk type (known: {', '.join(CONFIG_MODELS)})"
        )
    try:
        return CONFIG_MODELS[type_name].model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(path, exc)
        raise ConfigError(
            "\n".join(
                p.replace(": key '", f": key 'trunks.{name}.", 1)
                if ": key '" in p
                else p.replace(f"{path}: ", f"{path}: trunks.{name}: ", 1)
                for p in problems
            )
        ) from exc
