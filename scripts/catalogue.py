"""Keep the Korean message catalogue in step with the code (needs Babel: pip install -e '.[test]').

    python scripts/catalogue.py          # add new messages to safecall/locale/ko/LC_MESSAGES/safecall.po, drop
                                         # ones the code no longer has, and compile safecall.mo from it
Then translate every entry whose msgstr is empty and run it again. tests/test_cli_locale.py fails while a
message has no translation or safecall.mo is older than safecall.po.

Messages are found by Babel in calls of _(), N_() and NC_(context, ...) in safecall/, and in the
help of every command and option of the app (docstrings and help=...).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "safecall" / "locale" / "ko" / "LC_MESSAGES" / "safecall.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "NC_": ((1, "c"), 2)}


def sources() -> list[Path]:
    return sorted(p for p in (ROOT / "safecall").rglob("*.py") if "migrations" not in p.parts)


def help_texts() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from typer.main import get_command

    from safecall.cli import create_app

    found: list[str] = []

    def walk(command) -> None:
        found.extend(
            text
            for text in [command.help, command.short_help] + [getattr(p, "help", None) for p in command.params]
            if text
        )
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(get_command(create_app(environ={})))
    return found


def messages() -> dict[tuple[str, str | None], list[str]]:
    """(msgid, context) -> where it is used."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for path in sources():
        for line, message, _comments, context in extract_from_file("python", str(path), keywords=KEYWORDS):
            if isinstance(message, str) and message:
                found.setdefault((message, context), []).append(f"{path.relative_to(ROOT)}:{line}")
    for text in help_texts():
        found.setdefault((text, None), []).append("safecall/cli (help)")
    return found


def read_catalogue(path: Path = PO) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale="ko", domain="safecall")


def compiled(catalogue: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    return buffer.getvalue()


def problems() -> list[str]:
    """What is wrong with the committed catalogue: untranslated or missing messages, a stale .mo."""
    catalogue = read_catalogue()
    wrong = []
    for (message, context), places in messages().items():
        entry = catalogue.get(message, context=context)
        if entry is None or not entry.string or entry.fuzzy:
            wrong.append(f"no Korean for {message!r}" + (f" ({context})" if context else "") + f" at {places[0]}")
    if not MO.exists() or MO.read_bytes() != compiled(catalogue):
        wrong.append(f"{MO.relative_to(ROOT)} is not compiled from {PO.name}: run python scripts/catalogue.py")
    return wrong


def update() -> int:
    old = read_catalogue() if PO.exists() else Catalog(locale="ko", domain="safecall")
    # The old creation date is kept, so running this on an unchanged code base changes no file.
    new = Catalog(locale="ko", domain="safecall", project="SafeCall", charset="utf-8", creation_date=old.creation_date)
    missing = 0
    for (message, context), places in messages().items():
        entry = old.get(message, context=context)
        string = entry.string if entry is not None and not entry.fuzzy else ""
        missing += not string
        new.add(message, string, context=context, locations=[(place.split(":")[0], 0) for place in places[:1]])
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as handle:
        write_po(
            handle, new, width=120, omit_header=False, no_location=True, sort_output=True
        )  # sorted by message: stable under code moves, and merges cleanly
    MO.write_bytes(compiled(read_catalogue()))
    print(f"{PO.relative_to(ROOT)}: {len(new)} messages, {missing} without a translation")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(update())
