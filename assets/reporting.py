"""Small markdown helpers for asset metadata (what a user reads in the Dagster UI)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import pyarrow as pa


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def md_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts), columns in the order of the first row."""
    if not rows:
        return "_(none)_"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def query_table(con, sql: str) -> str:
    """The result of a DuckDB query as a markdown table."""
    table = con.sql(sql).to_arrow_table()
    return md_table(table.to_pylist(), table.column_names)


def counts_table(counts: Mapping[str, int], key: str, value: str) -> str:
    """A markdown table of a counter, largest first, with a total row."""
    rows = [{key: k, value: v} for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    if rows:
        rows.append({key: "**total**", value: sum(counts.values())})
    return md_table(rows, [key, value])


def table_preview(table: pa.Table, n: int = 10) -> str:
    """The first ``n`` rows of an Arrow table as markdown."""
    return md_table(table.slice(0, n).to_pylist())


def accounting_metadata(per_shard: Sequence[Mapping[str, object]]) -> dict:
    """Totals of a per-shard accounting (dicts with ``shard``, ``ok`` and counts) and the
    shards that do not add up, for a blocking check's metadata."""
    counts = [k for k in per_shard[0] if k not in ("shard", "ok")] if per_shard else []
    return {
        "shards_checked": len(per_shard),
        **{k: sum(int(a[k]) for a in per_shard) for k in counts},
        "mismatched_shards": [a for a in per_shard if not a["ok"]],
    }


def markdown_image(png: bytes, alt: str = "samples") -> str:
    """The PNG inline in markdown (a data URI), so the UI shows it without file access."""
    if not png:
        return "(no samples)"
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
