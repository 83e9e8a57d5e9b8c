"""Korean particles chosen for the word they follow: "실행 {run:을}" gives "실행 1을", "실행 2를".

A Korean message names the particle as the format spec of its field: {run:을}, {name!r:이}, {user:으로},
{a:과}. tossi picks the form from how the word is read (numbers too: 1 일, 2 이, 10 십); for a word tossi
cannot read (Latin letters, a path) the English letter's Korean name decides (m 엠, l 엘: a final consonant),
so a message never leaves the choice open to the reader.
"""

from __future__ import annotations

import string

# The particles a message may name; their other forms are chosen for it.
PARTICLES = frozenset(
    {"을", "를", "이", "가", "은", "는", "과", "와", "으로", "로", "이나", "나", "이라", "라", "아", "야"}
)
_PAIRS = {
    "을": ("을", "를"),
    "이": ("이", "가"),
    "은": ("은", "는"),
    "과": ("과", "와"),
    "으로": ("으로", "로"),
    "이나": ("이나", "나"),
    "이라": ("이라", "라"),
    "아": ("아", "야"),
}
_PAIRS.update({second: pair for pair in list(_PAIRS.values()) for second in pair[1:]})
# Latin letters whose Korean names end in a consonant (엘, 엠, 엔, 알); "으로" after ㄹ is "로" (엘로, 알로).
_LATIN_CONSONANT = set("lmnr")
_LATIN_RIEUL = set("lr")


def attach(word: str, particle: str) -> str:
    """`word` with `particle` in the form that fits it."""
    import tossi  # with bidict and six: loaded when a message first needs a particle, not by every command's start

    chosen = tossi.postfix(word, particle)
    if "(" not in chosen[len(word) :]:
        return chosen
    return word + _latin_form(word, particle)


def _latin_form(word: str, particle: str) -> str:
    with_final, without = _PAIRS[particle]
    letters = [c for c in word.lower() if c.isalnum()]
    last = letters[-1] if letters else ""
    if particle in ("으로", "로"):
        return without if (last not in _LATIN_CONSONANT or last in _LATIN_RIEUL) else with_final
    return with_final if last in _LATIN_CONSONANT else without


class _Formatter(string.Formatter):
    def format_field(self, value, format_spec):
        if format_spec in PARTICLES:
            return attach(format(value, ""), format_spec)
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()


def format_message(template: str, *args, **fields) -> str:
    """str.format, with particle specs."""
    return _FORMATTER.vformat(template, args, fields)


class Text(str):
    """A translated message whose .format() chooses the particles (what Texts._ returns)."""

    def format(self, *args, **fields) -> str:
        return format_message(self, *args, **fields)
