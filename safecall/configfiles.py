"""What every TOML file of an instance shares: strict models, secret references, reading and clear errors.

Its own module so that the settings, the IVR flows and each trunk kind can use it without importing each other.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from safecall.errors import ConfigError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret lives: an environment variable or a file (e.g. /run/secrets/x)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "SecretRef":
        if bool(self.env) == bool(self.file):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def resolve(self, environ: Mapping[str, str]) -> str:
        if self.env:
            value = environ.get(self.env, "")
            if not value:
                raise ConfigError(f"secret: environment variable {self.env} is not set")
            return value
        path = Path(self.file)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"secret: cannot read secret file {path}: {exc.strerror}") from exc

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def validation_problems(path: Path, exc: ValidationError) -> list[str]:
    """Each pydantic error as 'file: key 'a.b': what is wrong'."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: key '{key}': {message}" if key else f"{path}: {message}")
    return problems


def parse_model(model: type[BaseModel], data: dict[str, Any], path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(validation_problems(path, exc))) from exc
