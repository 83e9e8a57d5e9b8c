"""`safecall` as a process with a deliberately broken engine, to show that the crash drill catches it.

    python tests/drill_mutants.py MUTANT -- --config DIR drill ...

Mutants:
- hold_keys: keeps a keypress in memory and writes it only when the call ends (a crash in between loses it).
- invent_keys: records "1" for a call that was answered and ended without a key.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safecall.cli import create_app  # noqa: E402
from safecall.lifecycle import CallLifecycle  # noqa: E402
from safecall.telephony.base import LineResult  # noqa: E402


def hold_keys() -> None:
    held: dict[str, tuple] = {}
    record_keypress, apply = CallLifecycle.record_keypress, CallLifecycle.apply

    def holding(self, token, digit, outcome, at, **spoken):
        held[token] = (token, digit, outcome, at)
        return True  # the person is thanked; nothing is stored yet

    def applying(self, events, connection=None, placed=()):
        for event in events:
            if event.kind == "ended" and event.token in held:
                record_keypress(self, *held.pop(event.token))
        return apply(self, events, connection, placed)

    CallLifecycle.record_keypress, CallLifecycle.apply = holding, applying


def invent_keys() -> None:
    apply = CallLifecycle.apply

    def inventing(self, events, connection=None, placed=()):
        for event in events:
            if event.kind == "ended" and event.result == LineResult.ANSWERED:
                self.record_keypress(event.token, "1", "acknowledged", event.at)
        return apply(self, events, connection, placed)

    CallLifecycle.apply = inventing


MUTANTS = {"hold_keys": hold_keys, "invent_keys": invent_keys}

if __name__ == "__main__":
    MUTANTS[sys.argv[1]]()
    args = sys.argv[2:]
    create_app()(args[1:] if args[:1] == ["--"] else args, prog_name="safecall")
