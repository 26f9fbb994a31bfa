"""`vprim query` only reads: on the tiny lake, nothing it is given can write, copy over, attach
or drop, and every refusal or SQL error is one line with no traceback."""

from __future__ import annotations

import glob
import os

import pytest

from vprim.dagster_project.cli import main


def _query(root, sql: str, capsys) -> tuple[int, str, str]:
    code = main(["query", "--root", str(root), sql])
    out, err = capsys.readouterr()
    return code, out, err


def _lake_files(root) -> dict[str, int]:
    version = (root / "lake" / "CURRENT").read_text().strip()
    paths = glob.glob(str(root / "lake" / f"v={version}" / "samples" / "**" / "*.parquet"))
    return {p: os.path.getsize(p) for p in paths}


@pytest.fixture(scope="module")
def lake_root(tiny_rebuilt):
    base, _ = tiny_rebuilt
    return base / "data"


@pytest.mark.e2e
def test_a_select_reads_the_lake(lake_root, capsys):
    code, out, err = _query(lake_root, "SELECT count(*) AS n FROM lake", capsys)
    assert code == 0 and err == ""
    assert int(out.strip().splitlines()[-1].strip("| ").replace(",", "")) > 500


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet)", "a COPY statement is refused"),
        ("ATTACH '{root}/other.db' AS other", "a ATTACH statement is refused"),
        ("DROP VIEW lake", "a DROP statement is refused"),
        ("CREATE TABLE t AS SELECT 1", "a CREATE statement is refused"),
        ("SET enable_external_access = false", "a SET statement is refused"),
        ("SELECT 1; COPY (SELECT 1) TO '{part}'", "one statement at a time: got 2"),
        ("   ", "the query is empty"),
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM no_such_view", "no_such_view does not exist"),
    ],
)
def test_anything_but_a_read_is_refused_in_one_line_and_the_lake_is_untouched(
    lake_root, capsys, sql, reason
):
    before = _lake_files(lake_root)
    part = next(iter(before))
    code, out, err = _query(lake_root, sql.format(part=part, root=lake_root), capsys)
    assert code == 2 and out == ""
    assert reason in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _lake_files(lake_root) == before
    assert not (lake_root / "other.db").exists()
