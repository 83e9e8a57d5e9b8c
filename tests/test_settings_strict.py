"""Attacks through the settings files (issue 28, item 7): no coercion of "no", 0 or "8080", a bound on every number."""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import BaseModel

from safecall.campaign import CampaignDef
from safecall.configfiles import Strict
from safecall.ivr import IvrFlow
from safecall.settings import Settings, TrunksFile
from safecall.telephony.asterisk.config import AsteriskTrunkConfig
from safecall.telephony.simulated import SimulatedTrunkConfig
from safecall.telephony.twilio.config import TwilioTrunkConfig


def with_web(cli, lines: str) -> None:
    path = cli.root / "config" / "safecall.toml"
    path.write_text(path.read_text(encoding="utf-8") + f"\n[web]\n{lines}\n", encoding="utf-8")


@pytest.mark.parametrize(
    "line, key",
    [
        ('secure_cookies = "no"', "web.secure_cookies"),
        ("secure_cookies = 0", "web.secure_cookies"),
        ('port = "8080"', "web.port"),
        ('login_attempts = "3"', "web.login_attempts"),
        ("session_minutes = 10000000000", "web.session_minutes"),
        ("session_minutes = 480.0", "web.session_minutes"),
        ("port = 70000", "web.port"),
    ],
)
def test_a_wrong_type_or_an_unbounded_number_is_refused_naming_the_key(cli, line, key):
    with_web(cli, line)
    failed = cli("doctor", ok=False)
    assert failed.exit_code != 0 and f"key '{key}'" in failed.output, failed.output


def test_a_campaign_number_given_as_text_is_refused(cli):
    cli.edit_campaign("max_retries = 3", 'max_retries = "3"')
    failed = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert failed.exit_code == 1 and "key 'retry.max_retries'" in failed.output


def test_the_shipped_settings_still_load(cli):
    assert cli("config", "show").exit_code == 0
    assert cli("campaign", "validate", "weekly-safe-call").exit_code == 0


NUMBERS = (int, float)


def numeric(annotation) -> bool:
    """int, float, or an optional one (int | None); not a dict or list of them."""
    if annotation in NUMBERS:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(numeric(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return False


def upper_bound(metadata) -> bool:
    """A le or lt among pydantic's constraints (a Field(...) inside Annotated keeps its own in .metadata)."""
    return any(
        getattr(m, "le", None) is not None
        or getattr(m, "lt", None) is not None
        or upper_bound(getattr(m, "metadata", ()))
        for m in metadata
    )


def models(root: type[BaseModel], seen: set) -> None:
    if root in seen:
        return
    seen.add(root)
    for field in root.model_fields.values():
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            for inner in (arg, *typing.get_args(arg)):
                if isinstance(inner, type) and issubclass(inner, Strict):
                    models(inner, seen)


def test_every_number_in_every_file_has_an_upper_bound():
    seen: set = set()
    for root in (
        Settings,
        TrunksFile,
        CampaignDef,
        IvrFlow,
        SimulatedTrunkConfig,
        AsteriskTrunkConfig,
        TwilioTrunkConfig,
    ):
        models(root, seen)
    unbounded = []
    for model in seen:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if numeric(annotation) and not upper_bound(field.metadata):
                unbounded.append(f"{model.__name__}.{name}")
            for arg in typing.get_args(annotation):  # dict[str, float]: the values' own bounds
                if typing.get_origin(arg) is typing.Annotated and numeric(typing.get_args(arg)[0]):
                    if not upper_bound(typing.get_args(arg)[1:]):
                        unbounded.append(f"{model.__name__}.{name}[]")
                elif arg in NUMBERS and typing.get_origin(annotation) in (dict, list):
                    unbounded.append(f"{model.__name__}.{name}[]")
    assert len(seen) > 15 and unbounded == []
