"""Rows inserted many to a statement: the card records of a writer's round, the token ids seen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table

# Rows of one INSERT: 13 columns each, within SQLite's 32,766 bound parameters.
ROWS_PER_STATEMENT = 500


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``rows`` inserted (those already there left as they are), many to a statement, written
    in the driver's own SQL: SQLAlchemy's multi-row ``values()`` builds and keys each statement in
    Python, ten times what the insert costs."""
    columns = list(rows[0])
    dialect = connection.dialect
    # Each value as SQLAlchemy would bind it (SQLite's datetimes are text in its own format).
    bind = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v) for c in columns]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = ", ".join(["(" + ", ".join([mark] * len(columns)) + ")"] * len(chunk))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values} ON CONFLICT DO NOTHING"
        values_of = (process(row[column]) for row in chunk for column, process in zip(columns, bind, strict=True))
        connection.exec_driver_sql(sql, tuple(values_of))
