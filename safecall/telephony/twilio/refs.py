"""The stored name of a Twilio recording: its account and recording ids, checked (webhook data is never trusted)."""

from __future__ import annotations

import re

TWILIO_REF = re.compile(r"^twilio:(AC[0-9a-fA-F]{32})/(RE[0-9a-fA-F]{32})$")


def twilio_ref(account_sid: str, recording_sid: str) -> str | None:
    """The stored name of a Twilio recording; None for ids that are not Twilio's
    (webhook data is checked, never trusted)."""
    ref = f"twilio:{account_sid}/{recording_sid}"
    return ref if TWILIO_REF.fullmatch(ref) else None
