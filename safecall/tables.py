"""Reading untrusted tables (rosters, signal files): CSV, XLSX or old XLS, within limits checked before parsing.

A workbook is a zip of XML: its directory, its parts' sizes and every cell reference of a sheet are read as a
stream before calamine parses it, because calamine allocates the whole range from A1 to the farthest cell
(one cell at XFD1048576 is 512 GiB) and holds every string in memory. CSV lines are measured before the csv
module parses them. Each refusal names the file and, where there is one, the sheet, row and column.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

from safecall.errors import InputError
from safecall.i18n import N_

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The largest table SafeCall reads. A district's roster is a few thousand rows of a dozen short cells."""

    file_bytes: int = 100 * MiB
    rows: int = 200_000
    columns: int = 100
    cells: int = 4_000_000  # of a sheet's used range, A1 to its farthest cell: what calamine allocates
    cell_chars: int = 2_000
    csv_line_chars: int = 32_768
    zip_members: int = 1_000
    zip_member_bytes: int = 300 * MiB  # one uncompressed part of an XLSX
    zip_total_bytes: int = 600 * MiB
    header_search_rows: int = 20  # title rows above the header


LIMITS = Limits()
XML_TEXT_BYTES_PER_CHAR = 10  # the longest XML spelling of one character: &#x10FFFF;
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound file an old .xls is


@dataclass
class TableRow:
    row: int  # the row number the officer sees in Excel (or the record number of a CSV file)
    values: dict[str, Any]


@dataclass
class Table:
    source: str  # the file, and the sheet when the workbook has more than one
    header: list[str]
    header_row: int
    rows: list[TableRow]


def column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def read_table(
    path: Path, is_header: Callable[[list[str]], bool], limits: Limits = LIMITS, header_hint: str = ""
) -> Table:
    """The first sheet whose header row `is_header` accepts (within the first rows). Blank rows are skipped.

    A file of one sheet without such a row takes its first row of two or more cells as the header, so that the
    caller can say which columns it does not know. `header_hint` names the columns a header is recognised by.
    """
    data = _read_bytes(path, limits)
    sheets: Sequence[tuple[str | None, Callable[[], list[list[Any]]]]]  # a CSV file's one sheet has no name
    if data.startswith(XLSX_MAGIC) or path.suffix.lower() in (".xlsx", ".xlsm"):
        sheets = _xlsx_sheets(path, data, limits)
    elif data.startswith(OLE_MAGIC) or path.suffix.lower() == ".xls":
        sheets = _xls_sheets(path, data, limits)
    else:
        sheets = [(None, lambda: _read_csv(path, data, limits))]
    named = len(sheets) > 1
    for name, read in sheets:
        source = f"{path}, sheet {name!r}" if named else str(path)
        records = read()
        _check_cells(source, records, limits)
        found = _find_header(records, is_header, limits.header_search_rows)
        if found is None and not named:
            found = _find_header(records, lambda cells: sum(bool(c) for c in cells) >= 2, limits.header_search_rows)
            if found is None and not any(_text(cell) for record in records for cell in record):
                raise InputError(N_("{path}: the file is empty (no header row)"), path=path)
        if found is not None:
            return _table(source, records, found)
    rows = limits.header_search_rows
    if named:
        sheets_named = ", ".join(repr(name) for name, _ in sheets)
        if header_hint:
            raise InputError(
                N_(
                    "{path}: no header row in the first {rows} rows in any sheet ({sheets}); "
                    "the header names the columns, e.g. {hint}"
                ),
                path=path,
                rows=rows,
                sheets=sheets_named,
                hint=header_hint,
            )
        raise InputError(
            N_("{path}: no header row in the first {rows} rows in any sheet ({sheets})"),
            path=path,
            rows=rows,
            sheets=sheets_named,
        )
    if header_hint:
        raise InputError(
            N_("{path}: no header row in the first {rows} rows; the header names the columns, e.g. {hint}"),
            path=path,
            rows=rows,
            hint=header_hint,
        )
    raise InputError(N_("{path}: no header row in the first {rows} rows"), path=path, rows=rows)


def _read_bytes(path: Path, limits: Limits) -> bytes:
    try:
        if path.is_dir():
            raise InputError(N_("{path}: is a folder, not a file; give the roster's .xlsx or .csv file"), path=path)
        if not path.exists():
            raise InputError(N_("{path}: file not found"), path=path)
        if not path.is_file():  # a device or a pipe: no end, or no size to check
            raise InputError(N_("{path}: not a regular file; give the roster's .xlsx or .csv file"), path=path)
        size = path.stat().st_size
        if size > limits.file_bytes:
            raise InputError(
                N_(
                    "{path}: the file is {mib:.0f} MiB; "
                    "SafeCall reads at most {most_mib} MiB (split it into several files)"
                ),
                path=path,
                mib=size / MiB,
                most_mib=limits.file_bytes // MiB,
            )
        with path.open("rb") as handle:
            data = handle.read(limits.file_bytes + 1)  # a device or a growing file stops here too
    except OSError as exc:
        raise InputError(N_("{path}: cannot be read ({reason})"), path=path, reason=exc.strerror or exc) from None
    if len(data) > limits.file_bytes:
        raise InputError(
            N_("{path}: the file is larger than {most_mib} MiB; split it into several files"),
            path=path,
            most_mib=limits.file_bytes // MiB,
        )
    if not data.strip():
        raise InputError(N_("{path}: the file is empty"), path=path)
    return data


def _text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


def _find_header(records: list[list[Any]], is_header: Callable[[list[str]], bool], search_rows: int) -> int | None:
    for index, record in enumerate(records[:search_rows]):
        if is_header([_text(cell) for cell in record]):
            return index
    return None


def _table(source: str, records: list[list[Any]], header_index: int) -> Table:
    header = [_text(cell) for cell in records[header_index]]
    while header and not header[-1]:  # Excel's trailing empty columns
        header.pop()
    rows = []
    for index in range(header_index + 1, len(records)):
        record, number = records[index], index + 1
        if not any(_text(cell) for cell in record):
            continue
        if len(record) > len(header) and any(_text(c) for c in record[len(header) :]):
            width = max(i for i, c in enumerate(record) if _text(c)) + 1
            raise InputError(
                N_("{source}: row {number} has more cells ({width}) than the header ({header_cells})"),
                source=source,
                number=number,
                width=width,
                header_cells=len(header),
            )
        cells = list(record[: len(header)]) + [None] * (len(header) - len(record))
        rows.append(TableRow(row=number, values=dict(zip(header, cells, strict=True))))
    return Table(source=source, header=header, header_row=header_index + 1, rows=rows)


def _check_cells(source: str, records: list[list[Any]], limits: Limits) -> None:
    if len(records) > limits.rows:
        raise InputError(
            N_("{source}: {count} rows; SafeCall reads at most {most_rows} (split the file)"),
            source=source,
            count=len(records),
            most_rows=limits.rows,
        )
    for index, record in enumerate(records):
        if len(record) > limits.columns and any(_text(c) for c in record[limits.columns :]):
            raise InputError(
                N_("{source}: row {row} has {columns} columns; SafeCall reads at most {most_columns}"),
                source=source,
                row=index + 1,
                columns=len(record),
                most_columns=limits.columns,
            )
        for column, cell in enumerate(record):
            if isinstance(cell, str) and len(cell) > limits.cell_chars:
                raise InputError(
                    N_("{source}: row {row}, column {column}: a cell of {length} characters; at most {most_chars}"),
                    source=source,
                    row=index + 1,
                    column=column_letters(column + 1),
                    length=len(cell),
                    most_chars=limits.cell_chars,
                )


# ---- CSV ------------------------------------------------------------------------------------------------


def decode_korean_text(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or CP949 (a superset of EUC-KR), as Korean Excel saves."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(N_("{path}: starts as UTF-8 but is not UTF-8 text"), path=path) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(N_("{path}: starts as UTF-16 but is not UTF-16 text"), path=path) from None
    for encoding in ("utf-8", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(
        N_("{path}: the text is neither UTF-8 nor CP949/EUC-KR; save it from Excel as 'CSV UTF-8'"), path=path
    )


def _read_csv(path: Path, data: bytes, limits: Limits) -> list[list[str]]:
    text = decode_korean_text(data, path)
    # Lines are measured before the csv module sees them: its own field limit ends in a traceback.
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if len(line) > limits.csv_line_chars:
            raise InputError(
                N_("{path}: line {number} is {length} characters long; a roster line has at most {most_chars}"),
                path=path,
                number=number,
                length=len(line),
                most_chars=limits.csv_line_chars,
            )
        if number > limits.rows:
            raise InputError(
                N_("{path}: more than {most_rows} lines; SafeCall reads at most {most_rows} (split the file)"),
                path=path,
                most_rows=limits.rows,
            )
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return list(reader)
    except csv.Error as exc:  # e.g. a quote opened and never closed, running over many lines
        raise InputError(
            N_("{path}: line {line}: not readable as CSV ({exc})"), path=path, line=reader.line_num, exc=exc
        ) from None


# ---- XLSX -----------------------------------------------------------------------------------------------

TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)\b([^>]*)>")
REF = re.compile(rb"""\br\s*=\s*["']([A-Za-z]{0,3})([0-9]+)["']""")
CELL_OPEN = re.compile(rb"<c[\s/>]")  # every unprefixed cell tag, however its attributes are spaced
PLAIN_CELL_COLUMN = re.compile(rb'<c r="([A-Z]{1,3})[0-9]+"')
PLAIN_CELL_ROW = re.compile(rb'<c r="[A-Z]{1,3}([0-9]+)"')
PLAIN_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]+)"')
NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
NS_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
SMALL_PART_BYTES = 4 * MiB  # workbook.xml and its relationships: parsed whole
CHUNK_BYTES = MiB  # a part is streamed in pieces of this size


class UsedRange:
    """How far a sheet's cells reach: calamine allocates every cell from A1 to the farthest row and column."""

    def __init__(self, source: str, limits: Limits):
        self.source, self.limits = source, limits
        self.rows = self.columns = 0

    def add(self, row: int, column: int) -> None:
        """A cell at `row`, `column` (from 1); an InputError when the sheet now reaches too far."""
        if row <= self.rows and column <= self.columns:
            return
        limits = self.limits
        if row > limits.rows or column > limits.columns:
            raise InputError(
                N_(
                    "{source}: a cell at {column}{row}: the sheet reaches beyond what SafeCall reads "
                    "({last_column}{most_rows}: {most_columns} columns, {most_rows} rows); "
                    "delete the stray cells, or copy the table into a new sheet"
                ),
                source=self.source,
                column=column_letters(column),
                row=row,
                last_column=column_letters(limits.columns),
                most_rows=limits.rows,
                most_columns=limits.columns,
            )
        self.rows, self.columns = max(self.rows, row), max(self.columns, column)
        if self.rows * self.columns > limits.cells:
            raise InputError(
                N_(
                    "{source}: the cells span A1:{last_column}{rows}, {cells} cells; "
                    "SafeCall reads at most {most_cells} (delete stray cells far from the table, or split the file)"
                ),
                source=self.source,
                last_column=column_letters(self.columns),
                rows=self.rows,
                cells=self.rows * self.columns,
                most_cells=limits.cells,
            )


def _xlsx_sheets(path: Path, data: bytes, limits: Limits) -> list[tuple[str, Callable[[], list[list[Any]]]]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(
            N_("{path}: not a readable XLSX workbook ({exc}); save it from Excel as .xlsx"), path=path, exc=exc
        ) from None
    if len(members) > limits.zip_members:
        raise InputError(
            N_("{path}: not a readable XLSX workbook ({parts} parts; at most {most_parts})"),
            path=path,
            parts=len(members),
            most_parts=limits.zip_members,
        )
    for member in members:
        if member.file_size > limits.zip_member_bytes:
            raise InputError(
                N_(
                    "{path}: the part {part} unpacks to {mib:.0f} MiB (at most {most_mib} MiB): "
                    "a cell or sheet far too large for a roster"
                ),
                path=path,
                part=member.filename,
                mib=member.file_size / MiB,
                most_mib=limits.zip_member_bytes // MiB,
            )
    total = sum(member.file_size for member in members)
    if total > limits.zip_total_bytes:
        raise InputError(
            N_("{path}: the workbook unpacks to {mib:.0f} MiB (at most {most_mib} MiB)"),
            path=path,
            mib=total / MiB,
            most_mib=limits.zip_total_bytes // MiB,
        )
    names = {member.filename for member in members}
    sheets = _xlsx_sheet_parts(path, archive, names)
    # Every part is unpacked once here, in bounded chunks: a part whose real size is not the one declared fails its CRC.
    for member in members:
        kind = (
            "sheet"
            if member.filename in sheets.values()
            else "strings"
            if member.filename.endswith("sharedStrings.xml")
            else "other"
        )
        sheet = next((name for name, part in sheets.items() if part == member.filename), None)
        _scan_part(path, data, member, kind, f"{path}, sheet {sheet!r}" if len(sheets) > 1 else str(path), limits)

    return _calamine_readers(path, data, list(sheets))


def _xlsx_sheet_parts(path: Path, archive: zipfile.ZipFile, names: set[str]) -> dict[str, str]:
    """Sheet name -> its part in the zip, in the workbook's order."""

    def small_xml(name: str):
        info = archive.getinfo(name)
        if info.file_size > SMALL_PART_BYTES:
            raise InputError(
                N_("{path}: the part {name} is {mib:.0f} MiB, far too large"),
                path=path,
                name=name,
                mib=info.file_size / MiB,
            )
        return ElementTree.fromstring(archive.read(name))

    try:
        rels_name = "xl/_rels/workbook.xml.rels"
        targets = {}
        if rels_name in names:
            for rel in small_xml(rels_name).iter(f"{NS_PACKAGE_REL}Relationship"):
                target = rel.get("Target", "")
                part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
                targets[rel.get("Id")] = part
        sheets = {}
        for sheet in small_xml("xl/workbook.xml").iter(f"{NS_MAIN}sheet"):
            part = targets.get(sheet.get(f"{NS_REL}id"))
            if part in names:
                sheets[sheet.get("name", "")] = part
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(
            N_("{path}: not a readable XLSX workbook ({exc}); save it from Excel as .xlsx"), path=path, exc=exc
        ) from None
    if not sheets:
        raise InputError(N_("{path}: the workbook has no worksheet"), path=path)
    return sheets


def _unpacked(data: bytes, member: zipfile.ZipInfo) -> Iterator[bytes]:
    """A part's bytes in pieces, unpacked here and never beyond the size it declares.

    zipfile stops at the declared size, but a Rust zip reader may inflate the whole stream: a part that says 1 KiB
    and inflates to 1 GiB (with the CRC of its first KiB) must be refused here, not found out by calamine.
    """
    if member.flag_bits & 0x1:
        raise ValueError("an encrypted part; save the workbook without a password")
    start = member.header_offset
    if data[start : start + 4] != XLSX_MAGIC:
        raise ValueError("no local header where the directory says")
    name_length, extra_length = struct.unpack("<HH", data[start + 26 : start + 30])
    begin = start + 30 + name_length + extra_length
    packed = memoryview(data)[begin : begin + member.compress_size]
    if len(packed) != member.compress_size:
        raise ValueError("the file is cut short")
    if member.compress_type == zipfile.ZIP_STORED:
        inflate = None
    elif member.compress_type == zipfile.ZIP_DEFLATED:
        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    else:
        raise ValueError(f"compression method {member.compress_type}, which Excel does not write")
    size = crc = 0
    for out in _inflated(packed, inflate):
        size += len(out)
        if size > member.file_size:
            raise ValueError(f"unpacks to more than the {member.file_size} bytes it declares")
        crc = zlib.crc32(out, crc)
        yield out
    if inflate is not None and not inflate.eof:
        raise ValueError("its compressed data ends before the part does")
    if size != member.file_size or crc != member.CRC:
        raise ValueError("its size or CRC is not the one the directory declares")


def _inflated(packed: memoryview, inflate) -> Iterator[bytes]:
    """The output of `packed` in pieces of at most CHUNK_BYTES (all of it, as it is, when `inflate` is None)."""
    for offset in range(0, len(packed), CHUNK_BYTES):
        piece = bytes(packed[offset : offset + CHUNK_BYTES])
        if inflate is None:
            yield piece
            continue
        while True:
            out = inflate.decompress(piece, CHUNK_BYTES)
            if out:
                yield out
            piece = inflate.unconsumed_tail
            if not piece and len(out) < CHUNK_BYTES:  # a full piece out may leave more to come with no more input
                break


def _scan_part(path: Path, data: bytes, member: zipfile.ZipInfo, kind: str, source: str, limits: Limits) -> None:
    """Stream one part: for a sheet, every cell's position; for sheets and strings, the length of every text."""
    text_bytes = limits.cell_chars * XML_TEXT_BYTES_PER_CHAR
    row = column = 0
    used = UsedRange(source, limits)
    carry = b""
    try:
        for chunk in _unpacked(data, member):
            if kind == "other":
                continue
            block = carry + chunk
            cut = block.rfind(b">") + 1
            block, carry = block[:cut], block[cut:]
            long_at = len(block) if len(carry) > text_bytes else _long_run_at(block, text_bytes) if cut else None
            if long_at is not None:
                if kind == "sheet":  # name the cell the text is in: place the cells before it
                    row, column = _place_cells(block[:long_at], row, column, None)
                where = (
                    f"near cell {column_letters(column)}{row}" if kind == "sheet" and row else "in its shared strings"
                )
                raise InputError(
                    N_("{source}: a cell {where} is longer than {most_chars} characters"),
                    source=source,
                    where=where,
                    most_chars=limits.cell_chars,
                )
            if kind != "sheet":
                continue
            last = _cells_within(block, used)
            if last is None:
                last = _farthest_cell_fast(block, used)
            if last is not None:
                column, row = last if last[1] else (column, row)
                continue
            row, column = _place_cells(block, row, column, used)
    except (
        ValueError,
        zlib.error,
        struct.error,
    ) as exc:  # a bad size or CRC, a broken deflate stream, a truncated file
        raise InputError(
            N_("{path}: not a readable XLSX workbook ({part}: {exc})"), path=path, part=member.filename, exc=exc
        ) from None


def _long_run_at(block: bytes, most: int) -> int | None:
    """Where some text or tag in `block` runs more than `most` bytes without a '<' (the '<' it follows), or None.

    A run of more than `most` bytes holds a whole window of (most + 1) // 2 bytes laid end to end from the first
    '<', so only windows with no '<' in them are measured: one short bytes search a window, not a step a byte.
    """
    first = block.find(b"<")
    if first == -1:
        return 0 if len(block) > most else None
    if first > most:
        return 0
    window = max(1, (most + 1) // 2)
    for start in range(first, len(block), window):
        if block.find(b"<", start, start + window) == -1:
            before = block.rfind(b"<", 0, start)
            after = block.find(b"<", start + window)
            if (len(block) if after == -1 else after) - before - 1 > most:
                return before
    return None


def _place_cells(block: bytes, row: int, column: int, used: UsedRange | None) -> tuple[int, int]:
    """The exact cell scan: each cell's place (its reference, or counted from the cell before), added to `used`."""
    for match in TAG.finditer(block):
        ref = REF.search(match.group(2))
        if match.group(1) == b"row":
            row, column = (int(ref.group(2)) if ref else row + 1), 0
            continue
        if ref and ref.group(1):
            column, row = _column_number(ref.group(1)), int(ref.group(2))
        else:
            column += 1
        if used is not None:
            used.add(row, column)
    return row, column


def _cells_within(block: bytes, used: UsedRange) -> tuple[int, int] | None:
    """The quickest cell scan, for a sheet written as Excel, LibreOffice and openpyxl write it: every cell `<c r="B7"`.

    The block's last cell gives its farthest row, the cells before it the farthest column (the first block takes
    its columns from the next scan); one regex search then finds any `<c` not followed by ` r="` and a plain
    reference within that row and column. No cell becomes a Python object. Returns the block's last cell (column,
    row), having added the range to `used`; None, with nothing changed, when a cell lies beyond, is written
    otherwise (another tag starting `<c`, e.g. `<col>`, counts as one), has a prefix, or the range passes a limit:
    the next scan then measures the block.
    """
    if b":" in block and b":c" in block:  # a prefixed cell, <x:c r="...">: one memchr in the usual case
        return None
    at = block.rfind(b'<c r="')
    if at == -1:
        return (0, 0) if b"<c" not in block else None
    last = PLAIN_CELL.match(block, at)
    if last is None:
        return None
    column, row = _column_number(last.group(1)), int(last.group(2))
    columns, limits = max(column, used.columns), used.limits
    if row > limits.rows or columns > limits.columns or max(row, used.rows) * columns > limits.cells:
        return None
    if _not_a_cell_within(columns, row).search(block):
        return None
    used.add(row, columns)
    return column, row


@functools.lru_cache(maxsize=64)
def _not_a_cell_within(columns: int, rows: int) -> re.Pattern:
    """`<c` not followed by ` r="` and a reference of plain letters and digits within `columns` and `rows`."""
    within = _at_most(column_letters(columns), "A", "A", "Z", "") + _at_most(str(rows), "1", "0", "9", '"')
    return re.compile(rb'<c(?! r="%s)' % within.encode())


def _at_most(bound: str, first: str, low: str, high: str, end: str) -> str:
    """A regex for the words over low..high, then `end`, that sort at or before `bound` as columns and row numbers
    sort: shorter words first, then letter by letter (the first letter from `first`: no leading zero). The words of
    the bound's length come first and shorter ones are taken whole (possessive), so a cell costs a few steps."""
    same_length = []
    for place, letter in enumerate(bound):
        lowest = first if place == 0 else low
        if letter > lowest:
            same_length.append(
                f"{bound[:place]}[{lowest}-{chr(ord(letter) - 1)}][{low}-{high}]{{{len(bound) - place - 1}}}{end}"
            )
    shorter = [f"[{first}-{high}][{low}-{high}]{{0,{len(bound) - 2}}}+{end}"] if len(bound) > 1 else []
    return "(?:" + "|".join(same_length + [bound + end] + shorter) + ")"


def _farthest_cell_fast(block: bytes, used: UsedRange) -> tuple[int, int] | None:
    """The fast path of the cell scan: when every cell in `block` starts `<c r="B7"` (as Excel, LibreOffice and
    openpyxl write them), the farthest row and column are found by the regex engine and a set, not a Python step
    per cell. Returns the block's last cell (column, row).

    None, with nothing changed, when a cell is written otherwise (a prefix, attributes in another order, no
    reference: its place is then counted from the cell before) or the block reaches past a limit: the exact scan
    then places each cell and names the first one out of bounds.
    """
    # Two passes of one group each: a million bytes objects are not tracked by the garbage collector, a million
    # (letters, number) tuples are, and made the collector walk the importer's heap over and over.
    letters = PLAIN_CELL_COLUMN.findall(block)
    if len(letters) != len(CELL_OPEN.findall(block)) or b":c" in block:
        return None
    if not letters:
        return 0, 0
    numbers = PLAIN_CELL_ROW.findall(block)
    rows, columns = max(map(int, set(numbers))), max(map(_column_number, set(letters)))
    limits = used.limits
    if (
        rows > limits.rows
        or columns > limits.columns
        or max(rows, used.rows) * max(columns, used.columns) > limits.cells
    ):
        return None
    used.add(rows, columns)
    return _column_number(letters[-1]), int(numbers[-1])


def _calamine_readers(path: Path, data: bytes, names: list[str]) -> list[tuple[str, Callable[[], list[list[Any]]]]]:
    """Each sheet's name and a function that reads it (only the sheets looked at are parsed)."""

    def reader(name: str) -> Callable[[], list[list[Any]]]:
        return lambda: _calamine_sheet(path, data, name)

    return [(name, reader(name)) for name in names]


def _calamine_sheet(path: Path, data: bytes, name: str) -> list[list[Any]]:
    # calamine (Rust) reads a 100,000-row sheet in about a second; openpyxl takes about twenty.
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        return workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as exc:  # calamine reports a broken zip, XML or sheet with its own error types
        raise InputError(N_("{path}: not a readable workbook ({exc})"), path=path, exc=exc) from None


# ---- XLS (Excel 97-2003) --------------------------------------------------------------------------------

# BIFF records that hold one cell (row and column first) and those that hold a run of cells (last column at the end).
XLS_CELL_RECORDS = {0x0006, 0x00D6, 0x00FD, 0x0201, 0x0203, 0x0204, 0x0205, 0x027E}
XLS_CELL_RUN_RECORDS = {0x00BD, 0x00BE}
XLS_BOF, XLS_BOUNDSHEET = 0x0809, 0x0085


def _xls_sheets(path: Path, data: bytes, limits: Limits) -> list[tuple[str, Callable[[], list[list[Any]]]]]:
    """An old .xls: its cells' positions are read from the BIFF records first (calamine allocates the whole range)."""
    import olefile
    from python_calamine import CalamineWorkbook

    if not data.startswith(OLE_MAGIC):
        raise InputError(
            N_(
                "{path}: not an Excel workbook (an .xls file that is something else, e.g. a web page); "
                "open it in Excel and save it as .xlsx"
            ),
            path=path,
        )
    try:
        document = olefile.OleFileIO(data)
        stream = document.openstream("Workbook" if document.exists("Workbook") else "Book").read()
        _check_xls_cells(path, stream, limits)
        names = CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names  # calamine reads every sheet here
    except InputError:
        raise
    except Exception as exc:  # olefile and calamine each report a broken file with their own error types
        raise InputError(
            N_("{path}: not a readable Excel 97-2003 workbook ({exc}); open it in Excel and save it as .xlsx"),
            path=path,
            exc=exc,
        ) from None
    return _calamine_readers(path, data, names)


def _check_xls_cells(path: Path, stream: bytes, limits: Limits) -> None:
    sheet_names: list[str] = []
    substream = 0
    used = None
    position = 0
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        body = position + 4
        position = body + length
        if position > len(stream):
            break  # a record cut short: calamine says what is wrong with the file
        if kind == XLS_BOF:
            substream += 1  # the first is the workbook's globals, then one per sheet
            sheet = sheet_names[substream - 2] if 0 <= substream - 2 < len(sheet_names) else "?"
            used = UsedRange(f"{path}, sheet {sheet!r}", limits)
        elif kind == XLS_BOUNDSHEET and length >= 8:
            count, wide = stream[body + 6], stream[body + 7] & 1
            raw = stream[body + 8 : body + 8 + count * (2 if wide else 1)]
            sheet_names.append(raw.decode("utf-16-le" if wide else "latin-1", "replace"))
        elif (kind in XLS_CELL_RECORDS and length >= 4) or (kind in XLS_CELL_RUN_RECORDS and length >= 6):
            row, column = struct.unpack_from("<HH", stream, body)
            if kind in XLS_CELL_RUN_RECORDS:
                (column,) = struct.unpack_from("<H", stream, position - 2)
            if used is not None:
                used.add(row + 1, column + 1)
