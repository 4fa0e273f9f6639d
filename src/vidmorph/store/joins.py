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

from vidmorph.store.prepared import Record


def prefixed(table: Table | FromClause, prefix: str) -> list[Label[Any]]:
    """Every column of `table`, labelled `<prefix><name>`."""
    return [c.label(f"{prefix}{c.name}") for c in table.c]


def split(values: Sequence[Any], tables: Sequence[Table]) -> list[Record | None]:
    """A joined row's values (the tables' columns in order, as `prefixed` selects them) as one
    Record per table, None for a table an outer join found no row of (its key is NULL)."""
    parts: list[Record | None] = []
    start = 0
    for table in tables:
        names, key = _layout(table)
        part = Record(zip(names, values[start : start + len(names)], strict=True))
        start += len(names)
        parts.append(None if part[key] is None else part)
    return parts


@cache
def _layout(table: Table) -> tuple[list[str], str]:
    """The table's column names in order, and the first column of its primary key."""
    return [c.name for c in table.c], next(iter(table.primary_key.columns)).name
