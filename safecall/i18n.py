"""Messages and keywords in the user's language: Korean by default, English where the locale asks for it.

Messages are English msgids translated through the gettext catalogue in safecall/locale (ko.po is the source,
ko.mo is compiled from it by scripts/catalogue.py and checked by the tests). Keywords such as visit outcomes and
close reasons are stored in English and accepted in either language; their Korean words come from the same
catalogue, under a context (msgctxt) that says what kind of keyword they are.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from safecall.errors import ConfigError, InputError
from safecall.glossary import KEYWORD_ALIASES
from safecall.particles import Text

DOMAIN = "safecall"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "ko"
LANGUAGES = ("ko", "en")
# SAFECALL_LANG=C asks for English, as C did before the instance setting existed.
ENGLISH_LOCALES = ("c", "posix", "en")


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


def NC_(context: str, message: str) -> str:
    """Marks a keyword of a kind (`context`) for the catalogue."""
    return message


def _code(value: str) -> str:
    """'ko_KR.UTF-8' -> 'ko', 'C.UTF-8' -> 'c'."""
    return value.strip().split(".")[0].split("@")[0].split("_")[0].lower()


def language(environ: Mapping[str, str], configured: str | None = None) -> str:
    """'ko' or 'en': SAFECALL_LANG; then an explicit en_*/ko_* locale; then the instance's `language`; then Korean.

    The locale is the first of LC_ALL, LC_MESSAGES, LANG that is set (POSIX order). C and POSIX say nothing
    about language (C.UTF-8 is the usual default of a server), so they fall through to the instance's setting,
    like other locales and no locale at all. `configured` is the instance's `language` setting, if any.
    """
    forced = (environ.get("SAFECALL_LANG") or "").strip()
    if forced:
        return "en" if _code(forced) in ENGLISH_LOCALES else DEFAULT_LANGUAGE
    for key in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = (environ.get(key) or "").strip()
        if value:
            if _code(value) in LANGUAGES:
                return _code(value)
            break
    return configured if configured in LANGUAGES else DEFAULT_LANGUAGE


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of `lang`; English is the msgids themselves."""
    if lang == "en":
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])
    except OSError as exc:
        raise ConfigError(
            f"the {lang} message catalogue is missing from {LOCALE_DIR} ({exc}); reinstall SafeCall"
        ) from exc


def korean() -> gettext.NullTranslations:
    """Reports and charts for the office are Korean whatever the locale of the process that writes them."""
    return translations("ko")


# Keywords, by kind. Stored values are the English words; the catalogue gives their Korean words.
OUTCOME = (
    NC_("outcome", "safe"),
    NC_("outcome", "not_home"),
    NC_("outcome", "hospitalised"),
    NC_("outcome", "emergency_services"),
    NC_("outcome", "deceased"),
    NC_("outcome", "moved"),
)
# What an officer's call-back came to (a callback task); the library says which fit which task.
CALLBACK_OUTCOME = (
    NC_("outcome", "called_safe"),
    NC_("outcome", "called_referred"),
    NC_("outcome", "called_no_answer"),
)
# What the officer did about a number that does not exist (a number task).
NUMBER_OUTCOME = (NC_("outcome", "number_fixed"),)
# Also in reports: a task still waiting, and one the engine closed because the person answered after all.
# no_contact: the officer found no number to call (the web's number page; the person is then visited).
REPORTED_OUTCOME = (
    OUTCOME
    + CALLBACK_OUTCOME
    + NUMBER_OUTCOME
    + (NC_("outcome", "pending"), NC_("outcome", "acknowledged_late"), NC_("outcome", "no_contact"))
)
CLOSE_REASON = (
    NC_("reason", "hospitalised"),
    NC_("reason", "moved"),
    NC_("reason", "deceased"),
    NC_("reason", "declined"),
    NC_("reason", "other"),
)
PERSON_STATUS = (NC_("status", "active"), NC_("status", "paused"), NC_("status", "closed"))
RUN_STATUS = (NC_("run", "open"), NC_("run", "closed"))
ROLE = (NC_("role", "team"), NC_("role", "officer"), NC_("role", "admin"))
LIST_KIND = (NC_("kind", "visit"), NC_("kind", "callback"), NC_("kind", "number"))
DELIVERY_STATUS = (NC_("delivery", "pending"), NC_("delivery", "sent"), NC_("delivery", "failed"))
DISPOSITION = (
    NC_("disposition", "acknowledged"),
    NC_("disposition", "help_requested"),
    NC_("disposition", "answered_no_key"),
    NC_("disposition", "no_answer"),
    NC_("disposition", "busy"),
    NC_("disposition", "failed"),
    NC_("disposition", "invalid_number"),
    NC_("disposition", "machine"),
    NC_("disposition", "unknown"),
    NC_("disposition", "in progress"),
)
# Risk is stored as 1-3 and entered as 하/중/상.
RISK = {3: NC_("risk", "high"), 2: NC_("risk", "medium"), 1: NC_("risk", "low")}
WEEKDAY = (
    NC_("weekday", "Mon"),
    NC_("weekday", "Tue"),
    NC_("weekday", "Wed"),
    NC_("weekday", "Thu"),
    NC_("weekday", "Fri"),
    NC_("weekday", "Sat"),
    NC_("weekday", "Sun"),
)
UNKNOWN_KEYWORD = {
    "outcome": N_("{option}: unknown outcome {value!r} (use {choices})"),
    "reason": N_("{option}: unknown reason {value!r} (use {choices})"),
    "status": N_("{option}: unknown status {value!r} (use {choices})"),
    "kind": N_("{option}: unknown list kind {value!r} (use {choices})"),
    "role": N_("{option}: unknown role {value!r} (use {choices})"),
}


class Texts:
    """One user's language: messages, keyword words, and keywords read back from either language."""

    def __init__(self, lang: str):
        self.lang = lang
        self.catalogue = translations(lang)

    def _(self, message: str) -> Text:
        """The message in this language; its .format() chooses Korean particles ({run:을})."""
        return Text(self.catalogue.gettext(message))

    def word(self, context: str, keyword: str | None) -> str:
        """The word for a stored keyword (e.g. 'moved' -> '이사'); unknown keywords are shown as they are."""
        if not keyword:
            return ""
        return self.catalogue.pgettext(context, keyword)

    def day_and_time(self, moment) -> str:
        """'2026-12-25 Fri 09:00', the weekday in the user's language (strftime's %a follows the process locale)."""
        return f"{moment:%Y-%m-%d} {self.word('weekday', WEEKDAY[moment.weekday()])} {moment:%H:%M}"

    def risk(self, value: int | None) -> str:
        return self.word("risk", RISK[value]) if value in RISK else ("" if value is None else str(value))

    def keyword(self, value: str, context: str, choices: Iterable[str], option: str) -> str:
        """The stored keyword for `value` given in Korean or English; a clear error naming the choices otherwise."""
        choices = tuple(choices)
        wanted = "".join(value.split()).lower()  # 안전확인 is 안전 확인
        ko = translations("ko")
        for choice in choices:
            if wanted in (choice, "".join(ko.pgettext(context, choice).split()).lower()):
                return choice
        alias = KEYWORD_ALIASES.get(context, {}).get(wanted)
        if alias in choices:
            return alias
        shown = ", ".join(f"{self.word(context, c)} ({c})" if self.lang != "en" else c for c in choices)
        raise InputError(UNKNOWN_KEYWORD[context], option=option, value=value, choices=shown)
