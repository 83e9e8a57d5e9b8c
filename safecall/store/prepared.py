"""Statements compiled once and run on the database driver's own cursor: the dialer's hot path.

Each call the engine places costs a handful of one-row statements. Measured on SQLite, a one-row
SELECT by key costs ~58 us through SQLAlchemy's execute (cache lookup, parameter and row processing),
~23 us prepared here, ~3 us in SQLite itself. The statements are still written in SQLAlchemy,
compiled by it for the database in use (SQLite or PostgreSQL), and their parameters converted by the
columns' own types (UTC timestamps and all); only the execution is direct.

Rules for a prepared statement: no `in_()` (SQLAlchemy expands those per execution; write the
alternatives out), name every parameter of an INSERT or UPDATE (`new_values`), and select only
what needs no conversion on the way back (ids, text, numbers, booleans computed in SQL).
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from typing import Any

import sqlalchemy as sa


def new_values(*columns: str) -> dict[str, sa.BindParameter]:
    """`.values()` for a prepared INSERT or UPDATE: each column from the parameter new_<column>."""
    return {column: sa.bindparam(f"new_{column}") for column in columns}


class Prepared:
    def __init__(self, statement: sa.Executable, dialect: sa.Dialect):
        self.compiled = statement.compile(dialect=dialect)
        self.sql = self.compiled.string
        self.order = self.compiled.positiontup if self.compiled.positional else None
        self.converters = [
            (name, converter) for bind, name in self.compiled.bind_names.items()
            if (converter := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        self.row_type = None

    def execute(self, connection: sa.Connection, params: dict[str, Any]) -> int:
        """Run in `connection`'s transaction; returns the number of rows changed."""
        with self._run(connection, params) as cursor:
            return cursor.rowcount

    def first(self, connection: sa.Connection, params: dict[str, Any]):
        """The first row, with its columns as attributes, or None."""
        rows = self.all(connection, params)
        return rows[0] if rows else None

    def all(self, connection: sa.Connection, params: dict[str, Any]) -> list:
        with self._run(connection, params) as cursor:
            rows = cursor.fetchall()  # read to the end: a RETURNING statement is complete only then
            if rows and self.row_type is None:
                self.row_type = namedtuple("Row", [column[0] for column in cursor.description])
        return [self.row_type(*row) for row in rows]

    def _run(self, connection: sa.Connection, params: dict[str, Any]):
        values = self.compiled.construct_params(params)
        for name, converter in self.converters:
            values[name] = converter(values[name])
        cursor = connection.connection.driver_connection.cursor()
        cursor.execute(self.sql, [values[name] for name in self.order] if self.order is not None else values)
        return contextlib.closing(cursor)
