"""How long a Korean text is as carriers count it, and which texts there are: pure rules, no sending.

Below the campaign file's checks (campaign.py) and the senders (notify.py), which both use them.
"""

from __future__ import annotations

SMS_LIMIT_BYTES = 90  # one SMS in Korea: 90 bytes of EUC-KR (2 a Hangul syllable); longer is an LMS
GUARDIAN_TEXTS = ("guardian_unreachable", "guardian_help")  # a campaign's texts, each with its own 알림톡 template
ALIMTALK_TEXTS = GUARDIAN_TEXTS + ("precall_notice", "checkin_link")  # texts with an 알림톡 template in [sms.alimtalk]


def euc_kr_bytes(text: str) -> int:
    """The length carriers count: EUC-KR bytes, 1 for ASCII and 2 for a Hangul syllable. Measured in CP949, which
    is EUC-KR plus the syllables EUC-KR lacks (똠: Python's euc-kr writes it as an 8-byte jamo sequence); any
    other character counts as 2."""
    return sum(_cp949_length(c) for c in text)


def _cp949_length(char: str) -> int:
    try:
        return len(char.encode("cp949"))
    except UnicodeEncodeError:
        return 2


def fit_in_one_sms(template: str, name: str, **fields: str) -> tuple[str, str]:
    """(text, name as written) of `template` for `name`, shortened to fit one SMS when the whole name does not.

    The stated rule: a name that would make the text longer than one SMS (90 EUC-KR bytes) keeps its leading
    characters, as many as fit, followed by '…'; never fewer than 2 characters. A campaign's texts are checked
    with a 3-syllable name (campaign.py), so 2 syllables and '…' always fit. Used when allow_lms is false."""
    text = template.format(name=name, **fields)
    if euc_kr_bytes(text) <= SMS_LIMIT_BYTES:
        return text, name
    for keep in range(len(name) - 1, 1, -1):
        short = name[:keep].rstrip() + "…"
        text = template.format(name=short, **fields)
        if euc_kr_bytes(text) <= SMS_LIMIT_BYTES:
            return text, short
    short = name[:2] + "…"
    return template.format(name=short, **fields), short


def sms_type(text: str) -> str:
    return "SMS" if euc_kr_bytes(text) <= SMS_LIMIT_BYTES else "LMS"
