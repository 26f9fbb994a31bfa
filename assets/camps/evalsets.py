"""The held-out eval sets of every camp: the registry and the one function that builds them.

Every eval set has its own seed range starting at ``seed_base`` (training seeds stay below
``2**40``), so eval and training samples never share a generator seed. Counting eval sets also
draw only from the lake's ``holdout`` images (training only from ``train`` images), so they
share no image either; the drawn camps' images are a function of the seed, and a drawn eval set
is also checked for repeated PNGs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb

from vprim.assets.camps import runs as R
from vprim.assets.contracts import layout
from vprim.assets.storage import Storage


@dataclass(frozen=True)
class EvalSet:
    """One held-out eval set.

    Attributes:
        name, camp: the set and the camp whose rows it holds.
        size: default number of seeds (the report's benchmark size).
        seed_base: its first seed.
        asset: the Dagster asset that builds it.
        families: counting's question families asked (all when empty).
        kinds: spatial's question kinds asked (both when empty).
    """

    name: str
    camp: str
    size: int
    seed_base: int
    asset: str
    families: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @property
    def drawn(self) -> bool:
        return self.camp in R.DRAWN


_FINE = ("attribute", "relation", "negative")  # constrained counts, not plain ones
EVAL_SETS: dict[str, EvalSet] = {
    e.name: e
    for e in (
        EvalSet("counting_fine", "counting", 600, 1 << 40, "counting_eval", families=_FINE),
        EvalSet("spatial_tf", "spatial", 1000, 2 << 40, "spatial_eval", kinds=("tf",)),
        EvalSet("spatial_open", "spatial", 1000, 3 << 40, "spatial_eval", kinds=("open",)),
        EvalSet("maze", "maze", 2000, 4 << 40, "maze_eval"),
        EvalSet("path_tracing", "path_tracing", 2000, 5 << 40, "path_tracing_eval"),
        # the counting camp's simplest level: what a first training run on `coarse` learns
        EvalSet("counting_coarse", "counting", 600, 6 << 40, "counting_coarse_eval", ("coarse",)),
    )
}
"""Eval-set name -> :class:`EvalSet`."""


def build_eval(
    store: Storage, name: str, size: int | None = None, *, config=None,
    con: duckdb.DuckDBPyConnection | None = None, version: str | None = None,
) -> R.Summary:  # fmt: skip
    """Generate and write the eval set ``name`` at ``camps/eval/<name>.parquet``.

    Args:
        size: seeds from ``seed_base`` (the set's default size when None).
        config: its camp's settings (``runs.CONFIGS``; the defaults when None).
        con: a DuckDB connection for counting sets (one is opened when None).
        version: the lake version counting reads (the published one when None).

    Raises:
        ValueError: a drawn eval set repeats an image.
    """
    es = EVAL_SETS[name]
    n = es.size if size is None else size
    seeds = range(es.seed_base, es.seed_base + n)
    res = R.run_seeds(store, es.camp, seeds, split="eval", config=config, eval_set=name,
                      seed_base=es.seed_base, con=con, version=version,
                      families=es.families or None, kinds=es.kinds or None)  # fmt: skip
    if es.drawn:
        dup = len(res.rows) - len({hashlib.md5(r["image_png"]).digest() for r in res.rows})
        if dup:
            raise ValueError(f"eval set {name}: {dup} repeated images")
    return R.write(store, layout.eval_set_path(name), res)


__all__ = ["EVAL_SETS", "EvalSet", "build_eval"]
