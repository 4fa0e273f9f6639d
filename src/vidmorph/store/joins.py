"""Rows of joined tables: each table's columns under a prefix, read back under their names.

The hot read paths (a task with its source and account, an asset with its account) fetch
several tables in one statement; `to_task`, `to_asset` and `to_account` then read each part
as if it were a row of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Label, Table
from sqlalchemy.sql import FromClause


def prefixed(table: Table | FromClause, prefix: str) -> list[Label[Any]]:
    """Every column of `table`, labelled `<prefix><name>`."""
    return [c.label(f"{prefix}{c.name}") for c in table.c]


class _Part:
    """One table's columns in a joined row, as attributes under their own names."""

    __slots__ = ("_mapping", "_prefix")

    def __init__(self, row: Any, prefix: str) -> None:
        self._mapping, self._prefix = row._mapping, prefix

    def __getattr__(self, name: str) -> Any:
        return self._mapping[self._prefix + name]


def part(row: Any, prefix: str, table: Table) -> _Part | None:
    """The `prefix` table's part of `row`; None when an outer join found no row for it."""
    key = next(iter(table.primary_key.columns)).name
    return None if row._mapping[prefix + key] is None else _Part(row, prefix)
