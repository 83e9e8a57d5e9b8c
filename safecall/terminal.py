"""Terminal output: Rich tables that never cut a name or a phone, and text from files rendered as plain data.

Names, addresses and notes come from rosters, signal files and webhooks. Rich would read `[...]` in them as markup
and a terminal would obey escape sequences in them, so every such value goes through `plain()` and is put in a
`rich.text.Text`, never into a markup string.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# Direction overrides would reorder what the officer reads; they are as unsafe as escape sequences.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
REPLACEMENT = "\ufffd"


def plain(value: Any) -> str:
    """`value` as text a terminal shows as it is: every control character (ESC, BEL, NUL, C1 ...) becomes U+FFFD.

    Without its ESC an ANSI or OSC sequence is inert and its remaining characters show literally.
    """
    text = "" if value is None else str(value)
    return "".join(REPLACEMENT if _is_control(c) else c for c in text)


def _is_control(char: str) -> bool:
    if char in _BIDI_CONTROLS:
        return True
    return unicodedata.category(char) == "Cc"


def text(value: Any, style: str = "") -> Text:
    """A Rich Text holding `value` literally (no markup, no escapes)."""
    return Text(plain(value), style=style)


def markup_safe(value: Any) -> str:
    """`value` for a place that takes Rich markup (a title): brackets escaped, controls replaced."""
    return escape(plain(value))


def table(*headers: str, title: str | None = None, show_header: bool = True, whole: tuple[int, ...] = ()) -> Table:
    """A table whose cells wrap or fold onto more lines when the terminal is narrow; nothing is cut with an ellipsis.

    Columns in `whole` (phone numbers, dates) keep each value on one line; the others give way first.
    """
    grid = Table(title=markup_safe(title) if title else None, show_header=show_header)
    for index, header in enumerate(headers):
        grid.add_column(header, overflow="fold", no_wrap=index in whole)
    return grid


def add_row(grid: Table, cells: Iterable[Any]) -> None:
    grid.add_row(*[text(cell) for cell in cells])


# A column squeezed below this many cells reads as a vertical strip of syllables.
READABLE_COLUMN = 10


def print_listing(
    out: Console, headers: list[str], rows: list[list[Any]], title: str | None = None, whole: tuple[int, ...] = ()
) -> None:
    """Rows as a table when the terminal is wide enough to read one, else one block of `header: value` lines per row.

    Either way every value is printed whole (folded or wrapped, never cut).
    """
    cells = [[plain(cell) for cell in row] for row in rows]
    natural = [max([cell_len(header)] + [cell_len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    needed = sum(width if i in whole else min(width, READABLE_COLUMN) for i, width in enumerate(natural))
    if needed + 3 * len(headers) + 1 <= out.width:
        grid = table(*headers, title=title, whole=whole)
        for row in cells:
            grid.add_row(*[Text(cell) for cell in row])
        out.print(grid)
        return
    if title:
        out.print(Text(plain(title), style="bold"))
    for row in cells:
        out.print(Text(f"{headers[0]} {row[0]}", style="bold"))
        for header, cell in zip(headers[1:], row[1:], strict=True):
            if cell:
                out.print(Text(f"  {header}: {cell}"))


def console(stderr: bool = False) -> Console:
    # emoji off: a name like ':thumbs_up:' is shown as written
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


class progress_bar:
    """A Rich progress bar over people finished; `update` is the callback the dialer calls."""

    def __init__(self, out: Console, label: str = "calling", done_label: str = "people done"):
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(done_label),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        )
        self.task = None

    def __enter__(self):
        self.progress.start()
        self.task = self.progress.add_task("calling", total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        assert self.task is not None  # added on entering the block that reports progress
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc):
        self.progress.stop()
        return False


def csv_text(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """CSV for a pipe or a file: control characters replaced, formula cells neutralised for Excel."""
    from safecall.sheets import neutralise

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([neutralise(plain(cell)) for cell in row])
    return buffer.getvalue()


def json_text(records: Any, indent: int | None = 2) -> str:
    """JSON whose strings carry no raw control or direction characters (json escapes only those below U+0020).

    indent=None: all on one line (JSON lines)."""
    encoded = json.dumps(records, ensure_ascii=False, indent=indent, default=str)
    return "".join(f"\\u{ord(c):04x}" if _is_control(c) and c != "\n" else c for c in encoded) + "\n"
