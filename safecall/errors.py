"""One error tree. Outside libraries' errors are translated at the edge."""


class SafeCallError(Exception):
    """Base of every error SafeCall raises on purpose.

    Given `fields`, the message is a template (an English msgid marked with N_) that the CLI shows in the
    user's language: `NotFoundError(N_("no visit task {task}"), task=7)`. str() is always the English text.
    """

    def __init__(self, message: str = "", *args, **fields):
        self.template = message
        self.fields = fields
        super().__init__(message.format(**fields) if fields else message, *args)

    def translated(self, gettext) -> str:
        """The message in the language of `gettext` (one not in the catalogue stays English)."""
        if not isinstance(self.template, str) or not self.template:
            return str(self)
        return gettext(self.template).format(**self.fields) if self.fields else gettext(self.template)


class ConfigError(SafeCallError):
    """A settings, trunk, campaign or IVR file is missing or wrong."""


class InputError(SafeCallError):
    """Input failed validation; `problems` lists each one, naming where it is."""

    def __init__(self, summary: str, problems: list[str] | None = None, **fields):
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

    def __init__(self, message: str, result: str = "failed"):
        super().__init__(message)
        self.result = result


class TrunkFatalError(TrunkError):
    """The trunk cannot place any call (bad credentials, no permission): dialling stops instead of burning attempts."""


class RunLockedError(SafeCallError):
    """Another live process is already dialling this run."""
