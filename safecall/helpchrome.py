"""The words around `--help` (Usage, Arguments, Options, Commands, [required], [default: …]) in the user's language.

Typer draws help with rich and reads these words from its settings in typer.rich_utils; Click writes "Usage: "
through the context's formatter class. Both are set here from the catalogue before help is drawn, never by
rewriting the printed text. Typer vendors its Click (typer.core._click): the formatter comes from there.
"""

from __future__ import annotations

import typer.rich_utils as rich_utils
from typer.core import TyperArgument, TyperOption, _click

from safecall.i18n import N_, Texts

USAGE = N_("Usage: ")
CHROME = {
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "DEFAULT_STRING": N_("[default: {}]"),
    "ENVVAR_STRING": N_("[env var: {}]"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "ABORTED_TEXT": N_("Aborted."),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),  # under a usage error
}


# The type column of an option, through the option's own metavar (Typer shows it in place of <str>, <int>, ...).
TYPE_LABEL = {"str": N_("<text>"), "int": N_("<integer>"), "float": N_("<number>"), "Path": N_("<path>")}


# An argument's name as help shows it (usage line and the Arguments panel), by the parameter's name in the code.
ARGUMENT_NAME = {
    "task": N_("TASK"),
    "name": N_("NAME"),
    "person": N_("PERSON"),
    "username": N_("USERNAME"),
    "file": N_("FILE"),
    "directory": N_("DIRECTORY"),
    "flow": N_("FLOW"),
    "run": N_("RUN"),
}
SUBCOMMAND_METAVAR = N_("COMMAND [ARGS]...")


def label_argument(param, texts: Texts) -> None:
    """An argument's name and type label in the language. Typer shows an argument's metavar as its name, so the name
    is set there; its type column reads display_type_rich() and has no setting, so the instance's own method gives
    the label. English keeps Typer's own name and label."""
    if not isinstance(param, TyperArgument):
        return
    # What this module set on Typer's object is in the instance's own dict, so it can be undone.
    if vars(param).get("_labelled", False):
        vars(param).pop("display_type_rich", None)  # back to Typer's method
        param.metavar, vars(param)["_labelled"] = None, False
    if texts.lang == "en" or param.metavar is not None:
        return
    # An argument missing here keeps Typer's words (tests/test_help_width.py fails on it; help never does).
    name, label = ARGUMENT_NAME.get(param.name), TYPE_LABEL.get(param.bare_type())
    param.metavar, vars(param)["_labelled"] = (texts._(name) if name else None), True
    if label:
        shown = texts._(label)
        vars(param)["display_type_rich"] = lambda ctx: shown


def label_option_type(param, texts: Texts) -> None:
    """A Korean type label for an option that has no metavar of its own; a flag shows none (it takes no value).
    English keeps Typer's own labels. Set on every invocation: one app may be asked in either language."""
    label_argument(param, texts)
    if not isinstance(param, TyperOption) or (param.metavar is not None and not vars(param).get("_labelled", False)):
        return
    if texts.lang == "en":
        param.metavar, vars(param)["_labelled"] = None, False
        return
    label = "" if param.is_flag else TYPE_LABEL.get(param.bare_type() if hasattr(param, "bare_type") else "")
    if label is not None:
        param.metavar, vars(param)["_labelled"] = (texts._(label) if label else ""), True


def context_class(texts: Texts) -> type:
    """A Click context whose help formatter writes "Usage: " in `texts`' language."""
    prefix = texts._(USAGE)

    class Formatter(_click.formatting.HelpFormatter):
        def write_usage(self, prog: str, args: str = "", prefix_: str | None = None) -> None:
            super().write_usage(prog, args, prefix if prefix_ is None else prefix_)

    return type("LocalContext", (_click.Context,), {"formatter_class": Formatter})


class WholeWords(rich_utils.OptionHighlighter):
    """Typer's highlighter for help text, which also makes the text fold rather than end in "…".

    Rich trims the space after a wrapped line by its length in characters, not cells: a Korean line that fills the
    column exactly keeps its trailing space, is one cell too wide, and the column's default overflow ("ellipsis")
    then replaces its last word with "…" ("또는 이 …"). With "fold" the extra cell, the space, is what is cut.
    Typer passes every help text through this highlighter (typer.rich_utils.highlighter), so it is set there."""

    def highlight(self, text) -> None:
        super().highlight(text)
        text.overflow = "fold"


def set_chrome(texts: Texts) -> None:
    """Typer's help words in `texts`' language (its settings are module-wide: set before each invocation's help)."""
    for setting, message in CHROME.items():
        setattr(rich_utils, setting, str(texts._(message)))
    rich_utils.highlighter = WholeWords()
