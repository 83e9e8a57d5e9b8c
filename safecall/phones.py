"""Phone numbers: E.164 inside, national format for people, masked in logs."""

from __future__ import annotations

import re

import phonenumbers

# A Korean mobile number written plainly (010-1234-5678, 010 1234 5678, 01012345678): parsing it is only
# dropping the trunk 0, so it is built directly. Whether it is valid is still libphonenumber's decision.
PLAIN_KR_MOBILE = re.compile(r"0(1\d)[-. ]?(\d{3,4})[-. ]?(\d{4})")


def normalise(raw: str, region: str = "KR") -> str:
    """E.164, or ValueError saying why not."""
    text = str(raw).strip()
    if not text:
        raise ValueError("empty phone number")
    plain = PLAIN_KR_MOBILE.fullmatch(text) if region == "KR" else None
    try:
        parsed = (phonenumbers.PhoneNumber(country_code=82, national_number=int("".join(plain.groups()))) if plain
                  else phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {text!r}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"invalid phone number: {text!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national(e164: str | None) -> str:
    """010-1234-5678, as visit teams read and dial it."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


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


# Anything that looks like a phone number inside free text: +8210..., 010-1234-5678, 02 123 4567.
_NUMBER_IN_TEXT = re.compile(r"\+?\d[\d\-. ()]{6,}\d")


def mask_text(text: str) -> str:
    """A provider's or server's error text with every phone number in it masked (see `mask`)."""
    return _NUMBER_IN_TEXT.sub(lambda match: mask(match.group(0)), text)
