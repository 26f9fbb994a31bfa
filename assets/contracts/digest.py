"""Row digests of vprim's tables: the proof that two builds wrote the same rows.

``python -m vprim.assets.contracts.digest ROOT [--exclude COL ...]`` prints, per table, its row
count and an order-free digest (the sum, mod 2^64, of the md5 of each row's text). Files,
shards, row order and row groups do not change a digest; any changed value does. Columns
that are not data (timings) are left out, and ``--exclude`` leaves out more, for comparing
builds whose contract deliberately changed a column.
"""

from __future__ import annotations

import argparse
import json
import sys

import duckdb

from vprim.assets.sql import connect
from vprim.assets.storage import Storage

#: table -> glob under the storage root (the lake: its published version, resolved below)
TABLES = {
    "catalog": "catalog/catalog.parquet",
    "raw_instances": "raw_instances/*.parquet",
    "source_stats": "source_stats/*.parquet",
    "rejects": "rejects/*/*.parquet",
    "label_vocabulary": "quality/label_vocabulary.parquet",
    "label_map": "quality/label_map.parquet",
    "clean_instances": "clean_instances/*.parquet",
    "source_selection": "source_selection/*.parquet",
    "lake": "lake/v={version}/samples/*/*.parquet",
}
#: columns that measure a run rather than describe the data (``v``: the lake version folder;
#: ``fingerprint``: the catalog's listing of the files, mtimes included)
VOLATILE = {"seconds", "v", "fingerprint"}


def _lake_version(store: Storage) -> str | None:
    version = store.read_text("lake/CURRENT")
    return version.removeprefix("v=") if version else None


def table_digest(
    con: duckdb.DuckDBPyConnection, pattern: str, exclude: set[str], root: str = ""
) -> dict:
    """Rows and order-free digest of the Parquet files matching ``pattern``.

    ``root`` in a value (the storage root inside a URI) reads as ``<root>``, so builds under
    different roots compare equal.
    """
    scan = f"read_parquet('{pattern}', union_by_name => true)"
    columns = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
    kept = [c for c in columns if c not in exclude and c not in VOLATILE]
    row = "struct_pack(" + ", ".join(f'"{c}" := "{c}"' for c in kept) + ")"
    rows, digest = con.sql(
        f"SELECT count(*), sum((md5_number(replace(CAST({row} AS VARCHAR), $root, '<root>')) "
        f"& 18446744073709551615::UHUGEINT)::HUGEINT) % 18446744073709551616 FROM {scan}",
        params={"root": root or "\x00"},
    ).fetchall()[0]
    return {"rows": rows, "digest": f"{int(digest or 0):016x}", "columns": kept}


def digests(root: str, exclude: set[str] = frozenset()) -> dict[str, dict]:
    """Digest of every table found under the storage ``root`` (a path or fsspec URL)."""
    store = Storage(root)
    con = connect(store)
    out = {}
    version = _lake_version(store)
    for table, pattern in TABLES.items():
        if "{version}" in pattern:
            if version is None:
                continue
            pattern = pattern.format(version=version)
        path = store.url(pattern)
        if not con.sql(f"SELECT count(*) FROM glob('{path}')").fetchall()[0][0]:
            continue
        out[table] = table_digest(con, path, set(exclude), store.url().rstrip("/"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.contracts.digest")
    parser.add_argument("root", help="storage root of a build (VPRIM_ROOT: a path or URL)")
    parser.add_argument("--exclude", nargs="*", default=[], help="columns to leave out")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    result = digests(args.root, set(args.exclude))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for table, d in result.items():
            print(f"{table:18s} {d['rows']:>10d} rows  {d['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
