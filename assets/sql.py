"""The project's DuckDB SQL lives in ``sql/`` (one statement per file); this loads it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from vprim.assets.contracts import layout
from vprim.assets.storage import Storage

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def load(name: str, **params: str) -> str:
    """The statement in ``sql/<name>.sql`` with ``{param}`` placeholders filled in."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    return text.format(**params) if params else text


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create every macro of ``sql/macros`` (``normalise_uri`` ...)."""
    for path in sorted((SQL_DIR / "macros").glob("*.sql")):
        con.execute(path.read_text())


def use_storage(con: duckdb.DuckDBPyConnection, storage: Storage) -> duckdb.DuckDBPyConnection:
    """Let ``con`` read and write ``storage``'s URLs (:meth:`Storage.url`); returns ``con``.

    A non-local root's fsspec filesystem is handed to DuckDB: its httpfs extension cannot be
    loaded without the internet, and its own S3 client would not share s3fs's endpoint and
    credentials (and knows no ``memory://``).
    """
    if not storage.is_local and not con.filesystem_is_registered(storage.protocol):
        con.register_filesystem(storage.fs)
    return con


def connect(storage: Storage, **config: object) -> duckdb.DuckDBPyConnection:
    """A new DuckDB connection (``config``: DuckDB settings) that reads ``storage``."""
    return use_storage(duckdb.connect(config=config), storage)


def register_views(con: duckdb.DuckDBPyConnection, root: str) -> list[str]:
    """Create the project's macros, and every view of ``sql/views`` whose data exists under
    ``root``; returns the views' names.

    ``{root}`` in a view is the storage root, ``{lake}`` the published lake version's samples
    (``lake/CURRENT``). Views may read other views: they are created in passes until none more
    can be (a view over a stage that has not run yet is left out).
    """
    register_macros(con)
    storage = Storage(root)
    use_storage(con, storage)
    params = {"root": storage.url(), "lake": _current_lake_glob(storage)}
    pending = sorted(path.stem for path in (SQL_DIR / "views").glob("*.sql"))
    created: list[str] = []
    while pending:
        failed = []
        for name in pending:
            try:
                con.execute(load(f"views/{name}", **params))
                con.execute(f"SELECT * FROM {name} LIMIT 0")
            except (duckdb.IOException, duckdb.CatalogException, duckdb.BinderException):
                con.execute(f"DROP VIEW IF EXISTS {name}")
                failed.append(name)  # its data (or a view it reads) does not exist yet
                continue
            created.append(name)
        if len(failed) == len(pending):
            break
        pending = failed
    return created


def _current_lake_glob(storage: Storage) -> str:
    """The published lake version's samples files, or a path that matches nothing."""
    version = storage.read_text(layout.LAKE_CURRENT)
    rel = layout.lake_samples_glob(version) if version else f"{layout.LAKE_DIR}/.none/*.parquet"
    return storage.url(rel).replace("'", "''")


#: what ``vprim query`` runs: statements that only read (DESCRIBE and SHOW parse as SELECT)
READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class QueryError(ValueError):
    """A query ``vprim query`` will not run, or DuckDB's one-line reason it failed."""


def _one_line(exc: duckdb.Error) -> str:
    return " ".join(str(exc).split("\n\n", 1)[0].split())


def read_only_query(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """Run one statement that only reads; anything that could write, copy, attach, drop or
    change a setting is refused before it runs, and the configuration is locked so the
    statement cannot unlock itself."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    if not statements:
        raise QueryError("the query is empty: give one SELECT")
    if len(statements) > 1:
        raise QueryError(f"one statement at a time: got {len(statements)}")
    kind = statements[0].type
    if kind not in READ_ONLY_STATEMENTS:
        raise QueryError(f"vprim query only reads: a {kind.name} statement is refused")
    con.execute("SET lock_configuration = true")
    try:
        return con.execute(statements[0])
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
