"""Phone numbers: E.164 inside, national format for people, masked in logs."""

from __future__ import annotations

import functools
import re

import phonenumbers

from safecall.errors import Message
from safecall.i18n import N_

# A Korean mobile number written plainly (010-1234-5678, 010 1234 5678, 01012345678): parsing it is only
# dropping the trunk 0, so it is built directly. Whether it is valid is still libphonenumber's decision.
PLAIN_KR_MOBILE = re.compile(r"0(1\d)[-. ]?(\d{3,4})[-. ]?(\d{4})")


def normalise(raw: str, region: str = "KR") -> str:
    """E.164, or ValueError saying why not."""
    text = str(raw).strip()
    if not text:
        raise ValueError(Message(N_("empty phone number")))
    plain = PLAIN_KR_MOBILE.fullmatch(text) if region == "KR" else None
    try:
        parsed = (
            phonenumbers.PhoneNumber(country_code=82, national_number=int("".join(plain.groups())))
            if plain
            else phonenumbers.parse(text, region)
        )
    except phonenumbers.NumberParseException as exc:
        raise ValueError(Message(N_("not a phone number: {text!r}"), text=text)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(Message(N_("invalid phone number: {text!r}"), text=text))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(
    maxsize=16_384
)  # a list page formats the same people's numbers again and again; parsing is the cost
def national(e164: str | None) -> str:
    """010-1234-5678, as visit teams read and dial it."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def is_mobile(e164: str) -> bool:
    """A mobile number (010 …): a text to a landline never arrives."""
    return phonenumbers.number_type(phonenumbers.parse(e164, None)) == phonenumbers.PhoneNumberType.MOBILE


def mask(number: str | None) -> str:
    """Keep the last 4 digits only: logs must not carry whole numbers."""
    if not number:
        return ""
    digits = number[1:] if number.startswith("+") else number
    if not digits.isdigit():  # stored numbers are E.164; anything else is masked digit by digit
        digits = "".join(c for c in number if c.isdigit())
    if len(digits) <= 4:
        return "*" * len(digits)
    return ("+" if number.startswith("+") else "") + "*" * (len(digits) - 4) + digits[-4:]


# A phone number inside free text, as providers and mail servers write it: +821012345678, 010-1234-5678,
# 010 1234 5678, (02) 123-4567, 01012345678@sms.example.org. Not part of a longer word or id (a call SID), and
# dots do not join groups, so an IP address stays readable.
NUMBER_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_+])\+?(?:\(\d{1,4}\) ?)?\d+(?:[ -]\d+)*(?![A-Za-z0-9_])")
DIGITS_OF_A_NUMBER = 9  # the fewest digits of a Korean number (02-123-4567); dates and error codes have fewer


def mask_text(text: str | None) -> str:
    """A provider's or server's error text with every phone number in it masked to its last 4 digits (separators
    kept), for logs and stored errors."""
    if not text:
        return ""

    def masked(match: re.Match) -> str:
        found = match.group()
        digits = sum(c.isdigit() for c in found)
        if digits < DIGITS_OF_A_NUMBER:
            return found
        keep_from = digits - 4
        seen, out = 0, []
        for c in found:
            if c.isdigit():
                out.append(c if seen >= keep_from else "*")
                seen += 1
            else:
                out.append(c)
        return "".join(out)

    return NUMBER_IN_TEXT.sub(masked, str(text))
