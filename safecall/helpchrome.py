"""The words around `--help` (Usage, Arguments, Options, Commands, [required], [default: …]) in the user's language.

Typer draws help with rich and reads these words from its settings in typer.rich_utils; Click writes "Usage: "
through the context's formatter class. Both are set here from the catalogue before help is drawn, never by
rewriting the printed text. Typer vendors its Click (typer.core._click): the formatter comes from there.
"""

from __future__ import annotations

import typer.rich_utils as rich_utils
from typer.core import TyperOption, _click

from safecall.i18n import N_, Texts

USAGE = N_("Usage: ")
CHROME = {
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"), "OPTIONS_PANEL_TITLE": N_("Options"), "COMMANDS_PANEL_TITLE": N_("Commands"),
    "REQUIRED_LONG_STRING": N_("[required]"), "DEFAULT_STRING": N_("[default: {}]"), "ENVVAR_STRING": N_("[env var: {}]"),
    "ERRORS_PANEL_TITLE": N_("Error"), "ABORTED_TEXT": N_("Aborted."),
}


# The type column of an option, through the option's own metavar (Typer shows it in place of <str>, <int>, ...).
TYPE_LABEL = {"str": N_("<text>"), "int": N_("<integer>"), "float": N_("<number>"), "Path": N_("<path>")}


def label_option_type(param, texts: Texts) -> None:
    """A Korean type label for an option that has no metavar of its own; a flag shows none (it takes no value).
    English keeps Typer's own labels. Set on every invocation: one app may be asked in either language."""
    if not isinstance(param, TyperOption) or (param.metavar is not None and not getattr(param, "_labelled", False)):
        return
    if texts.lang == "en":
        param.metavar, param._labelled = None, False
        return
    label = "" if param.is_flag else TYPE_LABEL.get(param.bare_type() if hasattr(param, "bare_type") else "")
    if label is not None:
        param.metavar, param._labelled = (texts._(label) if label else ""), True


def context_class(texts: Texts) -> type:
    """A Click context whose help formatter writes "Usage: " in `texts`' language."""
    prefix = texts._(USAGE)

    class Formatter(_click.formatting.HelpFormatter):
        def write_usage(self, prog: str, args: str = "", prefix_: str | None = None) -> None:
            super().write_usage(prog, args, prefix if prefix_ is None else prefix_)

    return type("LocalContext", (_click.Context,), {"formatter_class": Formatter})


def set_chrome(texts: Texts) -> None:
    """Typer's help words in `texts`' language (its settings are module-wide: set before each invocation's help)."""
    for setting, message in CHROME.items():
        setattr(rich_utils, setting, str(texts._(message)))
