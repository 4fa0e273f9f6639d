"""Prepared statements for the hot paths: SQLAlchemy Core compiled once, run on the driver.

A poll or an admission spends most of its time, with plain Core, building the statement,
computing its cache key and wrapping the result, not in the database. `Prepared` takes a Core
statement with named `arg`s, compiles it once for the database's dialect, and runs it on
the DBAPI cursor of the caller's connection (so inside its transaction), converting parameters
and results with the column types' own bind and result processors: the same values Core would
send and return, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import BindParameter, Connection, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None


def arg(name: str, type_: Any = None) -> BindParameter[Any]:
    """A parameter of a prepared statement, given by name at each run. Names start with `p_`
    (a column's own name is reserved in INSERT and UPDATE); a missing one is a TypeError."""
    if not name.startswith("p_"):
        raise ValueError(f"prepared parameters are named p_...: {name}")
    # A value (None) makes it optional to SQLAlchemy, which compiles IN lists only then.
    return bindparam(name, None, type_=type_)


#: a result row with its columns as attributes (what `to_task` and friends read): a named
#: tuple, whose attributes cost a fraction of a dict's __getattr__
Record = Any


def record_type(name: str, columns: Sequence[str]) -> Any:
    """The named tuple type of rows with these columns (one without a usable name, such as
    an unlabelled expression's, is reachable by position only)."""
    return namedtuple(name, [str(c) for c in columns], rename=True)


class Prepared:
    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        # render_postcompile: an IN list becomes one parameter per value, fixed from here on.
        compiled = cast(
            SQLCompiler,
            statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}),
        )
        self.sql = str(compiled)
        # Literal values (an IN list, a JSON path) and None for each `arg` not given.
        self._defaults: dict[str, Any] = dict(compiled.construct_params() or {})
        self._args = {name for name, bind in compiled.binds.items() if name.startswith("p_")}
        self._order = list(compiled.positiontup or ()) if compiled.positional else None
        self._bind: dict[str, _Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        # A SELECT's columns, or a DML statement's RETURNING ones (none without RETURNING).
        selected = list(getattr(statement, "exported_columns", ()))
        self._names = [c.key for c in selected]
        self._record: Any = record_type("Row", self._names)
        self._dialect = dialect
        self._types = [c.type.dialect_impl(dialect) for c in selected]
        #: (column index, converter) where a column needs one; made at the first run, from the
        #: driver's type codes (PostgreSQL's numerics need them)
        self._result: list[tuple[int, Callable[[Any], Any]]] | None = None

    def _params(self, values: Mapping[str, Any]) -> Any:
        missing = self._args.difference(values)
        if missing:
            raise TypeError(f"missing parameters {sorted(missing)} for: {self.sql}")
        merged = {**self._defaults, **values}
        for name, process in self._bind.items():
            if process is not None and merged.get(name) is not None:
                merged[name] = process(merged[name])
        if self._order is None:
            return merged
        return [merged[name] for name in self._order]

    def _cursor(self, conn: Connection | Any, values: Mapping[str, Any]) -> Any:
        """A cursor that ran the statement on `conn`: a Connection (inside its transaction) or
        a DBAPI connection from `Database.raw_read`."""
        raw: Any = conn.connection.dbapi_connection if isinstance(conn, Connection) else conn
        cursor = raw.cursor()
        params = self._params(values)
        try:
            cursor.execute(self.sql, params)
        except self._dialect.loaded_dbapi.Error as error:
            cursor.close()
            # As SQLAlchemy would raise it (IntegrityError for a unique index, ...).
            raise DBAPIError.instance(
                self.sql, params, error, self._dialect.loaded_dbapi.Error
            ) from error
        return cursor

    def _learn_types(self, cursor: Any) -> None:
        if self._result is None:
            codes = [d[1] for d in cursor.description]
            processors = [
                t.result_processor(self._dialect, code)
                for t, code in zip(self._types, codes, strict=True)
            ]
            self._result = [(i, p) for i, p in enumerate(processors) if p is not None]

    def convert(self, raw: tuple[Any, ...]) -> list[Any]:
        """A row as the driver returned it (`raw_or_none`), in the columns' Python types."""
        assert self._result is not None, "convert() follows a run that returned a row"
        values = list(raw)
        for i, process in self._result:
            if values[i] is not None:
                values[i] = process(values[i])
        return values

    def raw_or_none(self, conn: Connection | Any, **values: Any) -> tuple[Any, ...] | None:
        """The first row as the driver returned it, unconverted: what a caller compares with a
        row it saw before, to reuse what it made of that one (service.view_cache)."""
        cursor = self._cursor(conn, values)
        try:
            raw = cursor.fetchone()
            if raw is not None:
                self._learn_types(cursor)
            return None if raw is None else tuple(raw)
        finally:
            cursor.close()

    def one_or_none(self, conn: Connection | Any, **values: Any) -> Record | None:
        found = self.values_or_none(conn, **values)
        return None if found is None else self._record._make(found)

    def raw_rows(self, conn: Connection | Any, **values: Any) -> list[tuple[Any, ...]]:
        """Every row as the driver returned it (see `raw_or_none`)."""
        cursor = self._cursor(conn, values)
        try:
            rows = cursor.fetchall()
            if rows:
                self._learn_types(cursor)
            return [tuple(row) for row in rows]
        finally:
            cursor.close()

    async def raw_rows_async(self, conn: Any, **values: Any) -> list[tuple[Any, ...]]:
        """Every row as the driver returned it, on a psycopg AsyncConnection
        (store.async_read); the driver's errors are raised as they are."""
        async with conn.cursor() as cursor:
            await cursor.execute(self.sql, self._params(values))
            rows = await cursor.fetchall()
            if rows:
                self._learn_types(cursor)
            return [tuple(row) for row in rows]

    def values_or_none(self, conn: Connection | Any, **values: Any) -> list[Any] | None:
        """The first row's values in column order (for a caller that splits a join)."""
        raw = self.raw_or_none(conn, **values)
        return None if raw is None else self.convert(raw)

    def scalar(self, conn: Connection | Any, **values: Any) -> Any:
        found = self.values_or_none(conn, **values)
        return None if found is None else found[0]

    def run_then_commit(self, conn: Connection, **values: Any) -> None:
        """Run the statement and COMMIT `conn`'s transaction in one round trip (psycopg's
        pipeline mode): the server commits right after the statement, without waiting for
        this client to read its result and send the COMMIT, so the locks the statement took
        are held only for the server's own commit. An error in either is raised as SQLAlchemy
        would raise it, and the transaction is rolled back. PostgreSQL only; the caller's
        `with db.write()` then finds the transaction committed and has nothing more to do."""
        raw: Any = conn.connection.dbapi_connection
        params = self._params(values)
        try:
            with raw.pipeline(), raw.cursor() as cursor:
                cursor.execute(self.sql, params)
                raw.commit()
        except self._dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                self.sql, params, error, self._dialect.loaded_dbapi.Error
            ) from error

    def rowcount(self, conn: Connection | Any, **values: Any) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        cursor = self._cursor(conn, values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


class Statements:
    """Prepared statements by name, compiled on first use for one database's dialect."""

    def __init__(self, dialect: Dialect, build: Mapping[str, Callable[[], Any]]) -> None:
        self._dialect, self._build = dialect, build
        self._ready: dict[str, Prepared] = {}

    def __getitem__(self, name: str) -> Prepared:
        prepared = self._ready.get(name)
        if prepared is None:
            prepared = self._ready[name] = Prepared(self._build[name](), self._dialect)
        return prepared
