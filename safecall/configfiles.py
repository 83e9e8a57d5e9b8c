"""What every TOML file of an instance shares: strict models, secret references, reading and clear errors.

Its own module so that the settings, the IVR flows and each trunk kind can use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

from safecall.errors import ConfigError, Lines, Message, message_of
from safecall.i18n import N_


class Strict(BaseModel):
    # strict: "no" or 0 is no bool and "8080" no int; a TOML file has types, and a wrong one is a mistake to name.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SecretRef(Strict):
    """Where a secret lives: an environment variable or a file (e.g. /run/secrets/x)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if bool(self.env) == bool(self.file):
            raise ValueError(Message(N_("give exactly one of 'env' or 'file'")))
        return self

    def resolve(self, environ: Mapping[str, str]) -> str:
        if self.env:
            value = environ.get(self.env, "")
            if not value:
                raise ConfigError(N_("secret: environment variable {env} is not set"), env=self.env)
            return value
        assert self.file is not None  # exactly one of env and file (_one_source)
        path = Path(self.file)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                N_("secret: cannot read secret file {path}: {reason}"), path=path, reason=exc.strerror
            ) from exc

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"


def validation_problems(path: Path, exc: ValidationError) -> list[str]:
    """Each pydantic error as 'file: key 'a.b': what is wrong'."""
    problems: list[str] = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
        if error["type"] in COERCED and isinstance(error["input"], str):
            problems.append(_quoted_problem(error, key, path))  # `port = "8080"`: say what to write instead
            continue
        message = _pydantic_message(error)
        problems.append(
            Message(N_("{path}: key '{key}': {problem}"), path=path, key=key, problem=message)
            if key
            else Message(N_("{path}: {problem}"), path=path, problem=message)
        )
    return problems


# Pydantic's usual messages, so they can be translated; one whose text differs (another pydantic) stays as it is.
PYDANTIC_MESSAGES = {
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "missing": N_("Field required"),
    "literal_error": N_("Input should be {expected}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_type": N_("Input should be a valid integer"),
    "string_type": N_("Input should be a valid string"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "bool_type": N_("Input should be a valid boolean"),
    "list_type": N_("Input should be a valid list"),
    "too_short": N_("List should have at least {min_length} item after validation, not {actual_length}"),
}


def _pydantic_message(error) -> str:
    original = (error.get("ctx") or {}).get("error")
    if isinstance(original, ValueError):
        return message_of(original)
    template = PYDANTIC_MESSAGES.get(error["type"])
    if template:
        try:
            message = Message(template, **(error.get("ctx") or {}))
        except (KeyError, IndexError, ValueError):
            message = None
        if message is not None and message == error["msg"]:
            return message
    return error["msg"].removeprefix("Value error, ")


COERCED = {"bool_type": "boolean", "int_type": "integer", "float_type": "number"}
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1", "y", "t"), ("false", "no", "off", "0", "n", "f")


def coercion_problems(model: type[BaseModel], data: dict[str, Any], path: Path) -> list[str]:
    """The values of a file that validate only by coercion (`port = "8080"`, `secure_cookies = "no"`): this release
    refuses them (CHANGELOG.md), so each is named with what to write instead. Call it on data that validates."""
    try:
        model.model_validate(data, strict=True)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            if error["type"] not in COERCED or not isinstance(error["input"], str):
                continue
            key = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
            problems.append(_quoted_problem(error, key, path))
        return problems
    return []


def _quoted_problem(error: ErrorDetails, key: str, path: Path) -> Message:
    text = error["input"].strip().lower()
    if error["type"] == "bool_type":
        fixed = "true" if text in TRUE_WORDS else "false" if text in FALSE_WORDS else "true or false"
    else:
        fixed = error["input"].strip()
    return Message(
        N_(
            "{path}: key '{key}': {value} is quoted text, and this release reads no number or true/false from text: "
            "write {key} = {fixed}, without quotes"
        ),
        path=path,
        key=key,
        value=f'"{error["input"]}"',
        fixed=fixed,
    )


def parse_model(model: type[BaseModel], data: dict[str, Any], path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(Lines(validation_problems(path, exc))) from exc
