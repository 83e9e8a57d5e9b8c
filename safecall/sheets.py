"""Spreadsheet output that Korean Excel opens safely: UTF-8 CSV with BOM, and formula cells neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Cells that Excel would run as a formula get a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_bytes(header: list[str], rows: Iterable[list]) -> bytes:
    """UTF-8 with BOM, so Korean Excel opens it as it is."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")


def append_rows(sheet, header: list[str], rows: Iterable[list]) -> None:
    sheet.append(header)
    for row in rows:
        sheet.append([neutralise(cell) for cell in row])
