"""Rows of joined tables: each table's columns selected under a prefix, split back into one
record per table.

The hot read paths (a task with its source and account, an asset with its account) fetch
several tables in one statement; `to_task`, `to_asset` and `to_account` then read each part
as if it were a row of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Label, Table
from sqlalchemy.sql import FromClause

from vidmorph.store.prepared import Record, record_type


def prefixed(table: Table | FromClause, prefix: str) -> list[Label[Any]]:
    """Every column of `table`, labelled `<prefix><name>`."""
    return [c.label(f"{prefix}{c.name}") for c in table.c]


def split(values: Sequence[Any], tables: Sequence[Table]) -> list[Record | None]:
    """A joined row's values (the tables' columns in order, as `prefixed` selects them) as one
    Record per table, None for a table an outer join found no row of (its key is NULL)."""
    parts: list[Record | None] = []
    start = 0
    for table in tables:
        row_type, width, key = _layout(table)
        part = row_type._make(values[start : start + width])
        start += width
        parts.append(None if part[key] is None else part)
    return parts


@cache
def _layout(table: Table) -> tuple[Any, int, int]:
    """The table's row type (its columns in order), their number, and the position of the
    first column of its primary key."""
    names = [c.name for c in table.c]
    key = next(iter(table.primary_key.columns)).name
    return record_type(f"{table.name}_row", names), len(names), names.index(key)
