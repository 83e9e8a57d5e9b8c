"""Where the instance is, its TOML files read, and the language it speaks: what every command needs before anything
else.

Its own module, without pydantic or the settings' models, so that `safecall --help` can pick the language of its help
without loading them (issue 29: start-up is imports).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safecall.errors import ConfigError
from safecall.i18n import N_

CONFIG_ENV = "SAFECALL_CONFIG"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(N_("{path}: file not found"), path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(N_("{path}: not valid TOML: {reason}"), path=path, reason=str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(N_("{path}: not UTF-8 text"), path=path) from exc


def configured_language(root: Path) -> str | None:
    """The instance's `language` setting, read before the rest of its files are checked, so that the error
    about a broken file is already in the office's language; None when there is no usable setting."""
    try:
        value = read_toml(root / "config" / "safecall.toml").get("language")
    except (ConfigError, OSError):
        return None
    return value if value in ("ko", "en") else None


def locate_instance(option: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """--config wins, then SAFECALL_CONFIG, then the current folder. A path may name the folder or its safecall.toml."""
    chosen = option or environ.get(CONFIG_ENV)
    if not chosen:
        return cwd
    path = Path(chosen).expanduser()
    if path.is_file() or path.suffix == ".toml":
        # .../INSTANCE/config/safecall.toml -> INSTANCE
        return path.absolute().parent.parent
    return path
