"""The kinds of trunk, found by the `type` key of a [trunks.NAME] table; each module exports KIND (a TrunkKind)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from safecall.configfiles import validation_problems
from safecall.errors import ConfigError
from safecall.telephony.base import TrunkKind

MODULES = {
    "simulated": "safecall.telephony.simulated",
    "asterisk": "safecall.telephony.asterisk",
    "twilio": "safecall.telephony.twilio",
}


def trunk_kind(type_name: str) -> TrunkKind:
    return import_module(MODULES[type_name]).KIND


def parse_trunk(name: str, data: Any, path: Path):
    """One [trunks.NAME] table as its kind's settings; problems name the file and the key."""
    type_name = data.get("type") if isinstance(data, dict) else None
    if type_name not in MODULES:
        raise ConfigError(f"{path}: key 'trunks.{name}.type': {type_name!r} is not a trunk type "
                          f"(known: {', '.join(MODULES)})")
    try:
        return trunk_kind(type_name).config_model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(path, exc)
        raise ConfigError("\n".join(p.replace(": key '", f": key 'trunks.{name}.", 1) if ": key '" in p
                                    else p.replace(f"{path}: ", f"{path}: trunks.{name}: ", 1) for p in problems)) from exc
