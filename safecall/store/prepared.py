"""Statements compiled once and run on the database driver's own cursor: the dialer's hot path.

Each call the engine places costs a handful of one-row statements. Measured on SQLite, a one-row
SELECT by key costs ~58 us through SQLAlchemy's execute (cache lookup, parameter and row processing),
~23 us prepared here, ~3 us in SQLite itself. The statements are still written in SQLAlchemy,
compiled by it for the database in use (SQLite or PostgreSQL), and their parameters converted by the
columns' own types (UTC timestamps and all); only the execution is direct.

They run on a pooled driver connection (`Database.statements`), not on SQLAlchemy's Connection:
that costs ~20 us more per unit of work than the driver's own commit (BENCHMARKS.md).

Rules for a prepared statement: no `in_()` (SQLAlchemy expands those per execution; write the
alternatives out), name every parameter of an INSERT or UPDATE (`new_values`), and give an INSERT
every column that has a default (defaults are SQLAlchemy's execution's work, which is skipped here).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection as DriverConnection  # what Database.statements hands out
from sqlalchemy.sql.compiler import SQLCompiler


def new_values(*columns: str) -> dict[str, sa.BindParameter]:
    """`.values()` for a prepared INSERT or UPDATE: each column from the parameter new_<column>."""
    return {column: sa.bindparam(f"new_{column}") for column in columns}


class Prepared:
    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect):
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # a SELECT, INSERT, UPDATE or DELETE compiles to one
        self.compiled = compiled
        if self.compiled.insert_prefetch or self.compiled.update_prefetch:
            missing = [column.name for column in (*self.compiled.insert_prefetch, *self.compiled.update_prefetch)]
            raise ValueError(
                f"a prepared statement does not run column defaults: give {', '.join(missing)} a value in it"
            )
        self.sql = self.compiled.string
        self.order = self.compiled.positiontup if self.compiled.positional else None
        # The statement's own values (state='placing' and the like); the caller's parameters go over them.
        self.fixed = self.compiled.construct_params(_check=False)
        self.required = frozenset(bind.key for bind in self.compiled.binds.values() if bind.required)
        # One converter a name: a parameter the statement uses twice (a date in two conditions) is converted once.
        self.converters = list(
            {
                name: converter
                for bind, name in self.compiled.bind_names.items()
                if (converter := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
            }.items()
        )
        # Values on the way back that need converting (a timestamp read from SQLite, a boolean).
        columns: Iterable[sa.ColumnElement[Any]] = (
            statement.exported_columns if isinstance(statement, (sa.Select, sa.UpdateBase)) else []
        )
        self.readers = [
            (index, reader)
            for index, column in enumerate(columns)
            if (reader := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        ]
        self.row_type: Callable[..., tuple[Any, ...]] | None = None  # made from the first rows read

    def execute(self, connection: DriverConnection, params: dict[str, Any]) -> int:
        """Run in `connection`'s transaction; returns the number of rows changed."""
        cursor = self._run(connection, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def first(self, connection: DriverConnection, params: dict[str, Any]):
        """The first row, with its columns as attributes, or None."""
        rows = self.all(connection, params)
        return rows[0] if rows else None

    def scalar(self, connection: DriverConnection, params: dict[str, Any]):
        """The first column of the first row, or None."""
        row = self.first(connection, params)
        return row[0] if row else None

    def all(self, connection: DriverConnection, params: dict[str, Any]) -> list:
        cursor = self._run(connection, params)
        try:
            rows = cursor.fetchall()  # read to the end: a RETURNING statement is complete only then
            if rows and self.row_type is None:
                self.row_type = _row_class([column[0] for column in cursor.description])
        finally:
            cursor.close()
        if self.readers:
            rows = [list(row) for row in rows]
            for row in rows:
                for index, reader in self.readers:
                    row[index] = reader(row[index])
        row_type = self.row_type  # None only while no row was ever read: then there are none now
        return [] if row_type is None else [row_type(*row) for row in rows]

    def _run(self, connection: DriverConnection, params: dict[str, Any]):
        if not self.required <= params.keys():  # a misspelt parameter would otherwise write NULL
            raise ValueError(f"parameters missing for {self.sql!r}: {sorted(self.required - params.keys())}")
        values = {**self.fixed, **params}
        for name, converter in self.converters:
            values[name] = converter(values[name])
        driver = connection.dbapi_connection
        assert driver is not None  # None only once the pooled connection is closed
        cursor = driver.cursor()  # the driver's own: the pool's wrapper adds ~2 us a statement
        cursor.execute(self.sql, [values[name] for name in self.order] if self.order is not None else values)
        return cursor


def _row_class(names: list[str]) -> Callable[..., tuple[Any, ...]]:
    """Rows with their columns as attributes."""
    return namedtuple("Row", names)
