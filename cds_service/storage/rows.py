"""Rows inserted many to a statement: the card records of a writer's round, the token ids seen."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table

# The most rows of one INSERT: 14 columns each (a card record), 3,584 bound parameters, within
# SQLite's 32,766 (999 before SQLite 3.32; the service's RETURNING needs 3.35 anyway).
ROWS_PER_STATEMENT = 256


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``rows`` inserted (those already there left as they are), many to a statement, written
    in the driver's own SQL: SQLAlchemy's multi-row ``values()`` builds and keys each statement in
    Python, ten times what the insert costs.

    Each statement holds a power of two of rows (13 as 8 + 4 + 1). A statement of every size
    from 1 to 500, as before, filled each connection's statement cache (SQLite keeps 128
    prepared statements, each a program as long as its rows and holding the last values bound
    to it): one process's memory grew by ~40 MiB before it levelled. Now a table has at most
    nine shapes."""
    columns = tuple(rows[0]) if rows else ()
    dialect = connection.dialect
    # Each value as SQLAlchemy would bind it (SQLite's datetimes are text in its own format).
    bind = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v) for c in columns]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    for chunk in _chunks(rows):
        values_of = (process(row[column]) for row in chunk for column, process in zip(columns, bind, strict=True))
        connection.exec_driver_sql(_statement(table.name, columns, len(chunk), mark), tuple(values_of))


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in runs of the largest power of two left, at most ``ROWS_PER_STATEMENT``."""
    start = 0
    while (left := len(rows) - start) > 0:
        size = min(ROWS_PER_STATEMENT, 1 << (left.bit_length() - 1))
        yield rows[start : start + size]
        start += size


@lru_cache(maxsize=64)  # nine sizes a table and parameter style: 3 tables, 27 statements
def _statement(table: str, columns: tuple[str, ...], size: int, mark: str) -> str:
    values = ", ".join(["(" + ", ".join([mark] * len(columns)) + ")"] * size)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} ON CONFLICT DO NOTHING"
