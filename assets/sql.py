"""The project's DuckDB SQL lives in ``sql/`` (one statement per file); this loads it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.storage import Storage

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def load(name: str, **params: str) -> str:
    """The statement in ``sql/<name>.sql`` with ``{param}`` placeholders filled in."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    return text.format(**params) if params else text


def register_views(con: duckdb.DuckDBPyConnection, root: str) -> list[str]:
    """Create every view of ``sql/views`` whose files exist under ``root``; returns their names."""
    storage = Storage(root)
    created = []
    for path in sorted((SQL_DIR / "views").glob("*.sql")):
        name = path.stem
        try:
            con.execute(load(f"views/{name}", root=storage.url()))
            con.execute(f"SELECT * FROM {name} LIMIT 0")
        except duckdb.IOException:
            con.execute(f"DROP VIEW IF EXISTS {name}")
            continue  # that stage has not written anything yet
        created.append(name)
    return created
