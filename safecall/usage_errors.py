"""Usage errors (a mistyped command, an unknown option, a missing or bad value) in the user's language.

Typer vendors its Click (typer.core._click) and, unlike Click, writes these messages as plain f-strings: there is
no gettext hook to give them a catalogue. Its values come from pydantic, whose messages are English only and whose
documented way to other words is the error's `type` and `ctx`. So the error is rebuilt, before Typer shows it,
from what the exception carries (its class, parameter, option name, pydantic's error), with the msgids below; the
few that Click raises as a bare message are recognised by the library's own message formats. English keeps
Typer's error as it is. Something not recognised here stays as Typer wrote it (tests/test_usage_errors.py fails
on it).
"""

from __future__ import annotations

import re

from typer.core import _click

from safecall.i18n import N_, Texts

NO_COMMAND = N_("No such command {name}.")
SIMILAR_COMMANDS = N_("Similar commands: {names}")
MISSING_COMMAND = N_("Missing command.")
NO_OPTION = N_("No such option: {option}")
SIMILAR_OPTIONS = N_("Similar options: {options}")
MISSING = {"argument": N_("Missing argument {name}."), "option": N_("Missing option {name}.")}
NEEDS_VALUE = N_("Option {option} needs a value.")
TAKES_NO_VALUE = N_("Option {option} does not take a value.")
EXTRA_ARGUMENTS = N_("Unexpected extra arguments: {args}")
INVALID_VALUE = N_("Invalid value for {name}: {problem}")
# pydantic's error types for the values of the app's options and arguments; ctx names the limit.
VALUE_PROBLEM = {
    "int_parsing": N_("{value} is not a whole number."),
    "float_parsing": N_("{value} is not a number."),
    "greater_than_equal": N_("It must be {limit} or more."),
    "greater_than": N_("It must be more than {limit}."),
    "less_than_equal": N_("It must be {limit} or less."),
    "less_than": N_("It must be less than {limit}."),
}
NOT_A_CHOICE = N_("{value} is not one of {choices}.")
UNUSABLE_VALUE = N_("{value} cannot be used here.")
LIMIT_KEYS = ("ge", "gt", "le", "lt")

# The bare messages of Typer's Click (typer/core.py, typer/_click/core.py and parser.py).
_NO_COMMAND = re.compile(r"No such command (?P<name>.+?)\.(?: Did you mean (?P<names>.+)\?)?", re.S)
_EXTRA = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)", re.S)
_NEEDS_VALUE = re.compile(r"Option .+ requires (?:an argument|\d+ arguments)\.", re.S)
_TAKES_NO_VALUE = re.compile(r"Option .+ does not take a value\.", re.S)


def in_language(error: _click.exceptions.UsageError, texts: Texts) -> _click.exceptions.UsageError:
    """`error` in `texts`' language: a UsageError with the same context (usage line, exit code 2), or `error` itself."""
    if texts.lang == "en" or type(error).__name__ == "NoArgsIsHelpError":  # the latter is help, shown as it is
        return error
    message = _message(error, texts)
    return error if message is None else _click.exceptions.UsageError(message, error.ctx)


def _message(error: _click.exceptions.UsageError, texts: Texts) -> str | None:
    _ = texts._
    if isinstance(error, _click.exceptions.NoSuchOption):
        message = _(NO_OPTION).format(option=error.option_name)
        if error.possibilities:
            message += " " + _(SIMILAR_OPTIONS).format(options=", ".join(sorted(error.possibilities)))
        return message
    if isinstance(error, _click.exceptions.MissingParameter):
        kind = error.param_type or (error.param.param_type_name if error.param is not None else "")
        return _(MISSING.get(kind, MISSING["argument"])).format(name=_hint(error))
    if isinstance(error, _click.exceptions.BadParameter):
        return _(INVALID_VALUE).format(name=_hint(error), problem=_value_problem(error, texts))
    if isinstance(error, _click.exceptions.BadOptionUsage):
        if _NEEDS_VALUE.fullmatch(error.message):
            return _(NEEDS_VALUE).format(option=error.option_name)
        if _TAKES_NO_VALUE.fullmatch(error.message):
            return _(TAKES_NO_VALUE).format(option=error.option_name)
        return None
    if error.message == "Missing command.":
        return _(MISSING_COMMAND)
    found = _NO_COMMAND.fullmatch(error.message)
    if found:
        message = _(NO_COMMAND).format(name=found["name"])
        return message + (" " + _(SIMILAR_COMMANDS).format(names=found["names"]) if found["names"] else "")
    found = _EXTRA.fullmatch(error.message)
    if found:
        return _(EXTRA_ARGUMENTS).format(args=found["args"])
    return None


def _hint(error: _click.exceptions.BadParameter) -> str:
    """How Click names the parameter ('--days', or an argument's shown name)."""
    hint = (
        error.param_hint
        if error.param_hint is not None
        else (error.param.get_error_hint() if error.param is not None else "")
    )
    return hint if isinstance(hint, str) else " / ".join(repr(h) for h in hint)


def _value_problem(error: _click.exceptions.BadParameter, texts: Texts) -> str:
    """What is wrong with the value, from pydantic's error when Typer's conversion raised one."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)  # pydantic's ValidationError.errors
    problems = errors() if callable(errors) else []
    if not problems:
        return error.message  # raised by a callback with its own words
    problem = problems[0]
    value = repr(str(problem.get("input")))
    context = problem.get("ctx") or {}
    limit = next((context[key] for key in LIMIT_KEYS if key in context), "")
    choices = getattr(getattr(error.param, "type_descriptor", None), "choices", None) or ()
    shown = ", ".join(repr(str(getattr(choice, "value", choice))) for choice in choices)
    if shown:  # Typer checks choices in a validator of its own: pydantic calls that a value_error
        message = NOT_A_CHOICE
    else:
        message = VALUE_PROBLEM.get(problem.get("type"), UNUSABLE_VALUE)
    return texts._(message).format(value=value, limit=limit, choices=shown)
