"""Phone numbers: normalising agrees with libphonenumber; masking keeps 4 digits."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from safecall import phones


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["010", "011", "016", "017", "018", "019", "012", "013", "014", "015"]),
    st.text(alphabet="0123456789", min_size=7, max_size=8),
    st.sampled_from(["-", "", " ", "."]),
)
def test_normalise_agrees_with_libphonenumber(prefix, digits, separator):
    # Not every 010 number is valid (e.g. 010-5970-0000): the plain-mobile path builds the number, but
    # libphonenumber's metadata still decides, and must agree with parsing the text in full.
    text = f"{prefix}{separator}{digits[:-4]}{separator}{digits[-4:]}"
    parsed = phonenumbers.parse(text, "KR")
    if phonenumbers.is_valid_number(parsed):
        assert phones.normalise(text) == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    else:
        try:
            phones.normalise(text)
        except ValueError:
            return
        raise AssertionError(f"{text} accepted but invalid")


def test_other_numbers_go_through_libphonenumber():
    assert phones.normalise("02-2148-1234") == "+82221481234"
    assert phones.normalise("+82 10 1234 5678") == "+821012345678"
    for bad in ("010-123-456", "02-1", "hello"):
        try:
            phones.normalise(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_masking_keeps_only_the_last_four_digits():
    assert phones.mask("+821012345678") == "+********5678"
    assert phones.mask("010-1234-5678") == "*******5678"  # not E.164: digits only, separators dropped
    assert phones.mask("+82 10 1234 5678") == "+********5678"
    assert phones.mask("1234") == "****" and phones.mask("") == "" and phones.mask(None) == ""
    assert phones.national("+821012345678") == "010-1234-5678"
