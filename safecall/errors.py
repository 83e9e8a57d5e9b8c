"""One error tree. Outside libraries' errors are translated at the edge."""

from collections.abc import Sequence

from safecall.particles import format_message


class Message(str):
    """English text that keeps its template (an N_ msgid) and fields, so the CLI can show it translated.

    It is a str, so code and tests that read problems as text are unchanged. Fields that are Messages are
    translated too: `Message(N_("row {row}: {problem}"), row=3, problem=Message(N_("empty")))`.
    """

    template: str
    fields: dict

    def __new__(cls, template: str, **fields):
        text = super().__new__(cls, template.format(**fields) if fields else template)
        text.template, text.fields = template, fields
        return text

    def __getnewargs_ex__(self):  # rows are checked in worker processes: a Message crosses by pickle
        return (self.template,), self.fields

    def translated(self, gettext) -> str:
        fields = {k: translated(v, gettext) for k, v in self.fields.items()}
        return format_message(gettext(self.template), **fields) if fields else gettext(self.template)


class Lines(Message):
    """Several messages, one a line (or joined by `sep`)."""

    lines: list[str]
    sep: str

    def __new__(cls, lines, sep: str = "\n"):
        text = str.__new__(cls, sep.join(lines))
        text.template, text.fields, text.lines, text.sep = sep.join(lines), {}, list(lines), sep
        return text

    def __getnewargs_ex__(self):
        return (self.lines, self.sep), {}

    def translated(self, gettext) -> str:
        return self.sep.join(translated(line, gettext) for line in self.lines)


class Keyword(Message):
    """A stored keyword in a message (an outcome, a reason), shown as the catalogue's word in its context
    (msgctxt "outcome", msgid "safe" is 안전 확인); English, or a keyword the catalogue lacks, shows it as stored."""

    context: str

    def __new__(cls, context: str, keyword: str):
        text = str.__new__(cls, keyword)
        text.template, text.fields, text.context = keyword, {}, context
        return text

    def __getnewargs_ex__(self):
        return (self.context, self.template), {}

    def translated(self, gettext) -> str:
        found = gettext(f"{self.context}\x04{self.template}")  # how GNU catalogues key a message with a context
        return self.template if "\x04" in found else found


def translated(text, gettext):
    """`text` in the language of `gettext` when it is a Message; anything else as it is."""
    return text.translated(gettext) if isinstance(text, (Message, SafeCallError)) else text


def message_of(exc: Exception) -> str:
    """The Message an exception (e.g. a ValueError of a parser) was raised with, else its text."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], Message) else str(exc)


class SafeCallError(Exception):
    """Base of every error SafeCall raises on purpose.

    Given `fields`, the message is a template (an English msgid marked with N_) that the CLI shows in the
    user's language: `NotFoundError(N_("no visit task {task}"), task=7)`. str() is always the English text.
    """

    def __init__(self, message: str = "", *args, **fields):
        self.template = message
        self.fields = fields
        super().__init__(message.format(**fields) if fields else message, *args)

    def message(self) -> Message:
        """The error's text as a Message, to list as one problem among others."""
        if isinstance(self.template, Message):
            return self.template
        return (
            Message(self.template, **self.fields)
            if isinstance(self.template, str) and self.template
            else Message(str(self))
        )

    def translated(self, gettext) -> str:
        """The message in the language of `gettext` (one not in the catalogue stays English)."""
        if not isinstance(self.template, str) or not self.template:
            return str(self)
        if isinstance(self.template, Message):
            return self.template.translated(gettext)
        fields = {k: translated(v, gettext) for k, v in self.fields.items()}
        return format_message(gettext(self.template), **fields) if fields else gettext(self.template)


class ConfigError(SafeCallError):
    """A settings, trunk, campaign or IVR file is missing or wrong."""


class InputError(SafeCallError):
    """Input failed validation; `problems` lists each one, naming where it is."""

    def __init__(self, summary: str, problems: Sequence[str] | None = None, **fields):
        super().__init__(summary, **fields)
        self.summary = self.args[0]
        self.problems = list(problems or [])
        self.args = (self.summary + "".join(f"\n  - {p}" for p in self.problems),)


class NoCallingDayError(InputError):
    """A week's run cannot be given a first call: the calling window stays shut for weeks (a calendar to fix)."""


class NotFoundError(SafeCallError):
    """A person, run or task that was asked for does not exist."""


class TrunkError(SafeCallError):
    """The telephony trunk refused or failed an operation. `result` says what it means for the call (a LineResult)."""

    def __init__(self, message: str, result: str = "failed", **fields):
        super().__init__(message, **fields)
        self.result = result


class TrunkFatalError(TrunkError):
    """The trunk cannot place any call (bad credentials, no permission): dialling stops instead of burning attempts."""


class RunLockedError(SafeCallError):
    """Another live process is already dialling this run."""
