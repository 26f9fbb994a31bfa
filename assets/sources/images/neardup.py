"""Exact near-duplicate search among 64-bit hashes within a Hamming radius, never all pairs.

Multi-index hashing by exact-match tables (the pigeonhole principle): the 64 bits are cut into
``m`` contiguous blocks; two hashes within distance ``r`` differ in at most ``r`` blocks, so
they agree exactly on at least ``m - r`` of them. One table per combination of ``m - r``
blocks (``C(m, r)`` tables) keys each hash by those blocks' bits; every pair within ``r``
shares a key in at least one table (no false negatives), and each candidate pair is verified
by its true distance (no false positives). A table is one NumPy sort: the key and the item's
position packed into one uint64, so equal keys end up adjacent.

The trade-off, for ``n`` uniformly random hashes (the worst case: real hashes cluster less in
the key bits than in the whole): more blocks mean longer keys, so fewer chance collisions to
verify (``n^2 / 2^(key bits + 1)`` per table), but more tables. :func:`plan` picks ``m`` by a
cost model calibrated on this machine (one table of 13.5M hashes: ~0.4 s to key, pack and
sort; a candidate pair costs ~3 hashes' worth). ``near_pairs`` of 13.5M uniform random hashes
on the 2-core machine:

======  ======  ======  ========  =======
radius  blocks  tables  key bits  seconds
======  ======  ======  ========  =======
2       4       6       32        3.6
3       5       10      25-26     5.7
4       7       35      27-28     14.6
5       8       56      24        50.3
6       10      210     24-28     118.0
======  ======  ======  ========  =======

The default radius (4, :data:`~.phash.DEFAULT_RADIUS`) is the widest that stays well under a
minute. Identical hashes are collapsed first: a thousand copies of one black frame cost one
entry, not half a million pairs per table.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

HASH_BITS = 64
#: candidate pairs generated and verified at once (bounds memory when a key is shared by many)
PAIR_BATCH = 1 << 22
# cost model of :func:`plan`, in the time to key and sort one hash in one table: verifying one
# candidate pair (gathers, xor, popcount) costs about this many (measured: 0.42 s per table
# of 13.5M hashes with few candidates, 0.76 s with 4.2M more candidates)
_PAIR_COST = 3.0


@dataclass(frozen=True)
class Plan:
    """Where the tables' keys come from.

    ``blocks``: ``(first bit, width)`` of each block, least significant first. ``tables``: the
    block indices of each table (ascending). ``index_bits``: low bits of a packed entry that
    hold the item's position.
    """

    radius: int
    blocks: tuple[tuple[int, int], ...]
    tables: tuple[tuple[int, ...], ...]
    index_bits: int

    def runs(self, table: tuple[int, ...]) -> list[tuple[int, int]]:
        """``(first bit, width)`` of the table's key, adjacent blocks merged into one run."""
        runs: list[list[int]] = []
        for b in table:
            start, width = self.blocks[b]
            if runs and runs[-1][0] + runs[-1][1] == start:
                runs[-1][1] += width
            else:
                runs.append([start, width])
        return [(s, w) for s, w in runs]


def _block_widths(m: int) -> list[int]:
    return [HASH_BITS // m + (1 if i < HASH_BITS % m else 0) for i in range(m)]


def plan(n: int, radius: int) -> Plan:
    """The cheapest exact table layout for ``n`` hashes and ``radius`` (see the module doc).

    Raises:
        ValueError: ``radius`` outside 0-32.
    """
    if not 0 <= radius <= HASH_BITS // 2:
        raise ValueError(f"radius must be within 0..{HASH_BITS // 2}, got {radius}")
    if n >= 1 << 32:  # a found pair is stored as two 32-bit positions
        raise ValueError(f"at most 2**32 - 1 distinct hashes, got {n}")
    index_bits = max(1, (max(n, 1) - 1).bit_length())
    if radius == 0:  # identical hashes are found by collapsing them; no table needed
        return Plan(0, ((0, HASH_BITS),), (), index_bits)
    best: tuple[float, int] | None = None
    for m in range(radius + 1, HASH_BITS + 1):
        widths = sorted(_block_widths(m))
        k = m - radius
        # the packed entry holds the longest key, the item's position, and one spare bit so
        # that "key + 1" (a lookup's upper bound) cannot overflow
        if sum(widths[-k:]) + index_bits > HASH_BITS - 1:
            continue
        collisions = n * n / 2.0 ** (sum(widths[:k]) + 1)
        cost = math.comb(m, radius) * (n + _PAIR_COST * collisions)
        if best is None or cost < best[0]:
            best = (cost, m)
    if best is None:
        raise ValueError(f"{n} hashes are too many to index at radius {radius}")
    m = best[1]
    starts = np.cumsum([0, *_block_widths(m)[:-1]]).tolist()
    blocks = tuple(zip(starts, _block_widths(m), strict=True))
    tables = tuple(itertools.combinations(range(m), m - radius))
    return Plan(radius, blocks, tables, index_bits)


def as_hashes(hashes: np.ndarray) -> np.ndarray:
    """``hashes`` as a 1-D uint64 array (int64 bit patterns are reinterpreted, not converted)."""
    h = np.asarray(hashes)
    if h.ndim != 1:
        raise ValueError(f"hashes must be 1-D, got shape {h.shape}")
    if h.dtype == np.int64:
        return h.view(np.uint64)
    if h.dtype != np.uint64:
        raise ValueError(f"hashes must be uint64 (or int64 bit patterns), got {h.dtype}")
    return h


def table_keys(
    values: np.ndarray, runs: list[tuple[int, int]], out: np.ndarray | None = None
) -> np.ndarray:
    """Each value's key in one table: the bits of ``runs`` concatenated, as uint64 (written
    into ``out`` when given)."""
    key = np.zeros(values.shape[0], np.uint64) if out is None else out
    key.fill(0)
    part = np.empty_like(key)
    for start, width in runs:
        np.right_shift(values, np.uint64(start), out=part)
        np.bitwise_and(part, np.uint64((1 << width) - 1), out=part)
        np.left_shift(key, np.uint64(width), out=key)
        np.bitwise_or(key, part, out=key)
    return key


def _sorted_table(
    values: np.ndarray,
    runs: list[tuple[int, int]],
    index_bits: int,
    positions: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The table: ``key << index_bits | position`` for every value, sorted (into ``out``)."""
    packed = table_keys(values, runs, out)
    np.left_shift(packed, np.uint64(index_bits), out=packed)
    np.bitwise_or(packed, positions, out=packed)
    packed.sort()
    return packed


def _streamed_tables(values: np.ndarray, p: Plan) -> Iterator[np.ndarray]:
    """Each table of ``p`` in turn, in one reused buffer: use a table before the next."""
    positions = np.arange(values.shape[0], dtype=np.uint64)
    out = np.empty(values.shape[0], np.uint64)
    for t in p.tables:
        yield _sorted_table(values, p.runs(t), p.index_bits, positions, out)


def _segment_arange(lengths: np.ndarray) -> np.ndarray:
    """``[0..lengths[0]), [0..lengths[1]), ...`` concatenated."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def _shared_key_pairs(table: np.ndarray, index_bits: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Batches of ``(i, j)`` positions, ``i < j``, of every two entries sharing a key."""
    same = np.flatnonzero((table[1:] ^ table[:-1]) >> np.uint64(index_bits) == 0)
    if same.size == 0:
        return
    # each entry p of a run of equal keys pairs with every later entry of its run
    run_start = np.r_[True, same[1:] != same[:-1] + 1]
    run_id = np.cumsum(run_start) - 1
    run_end = (same[np.r_[np.flatnonzero(run_start)[1:] - 1, same.size - 1]] + 2)[run_id]
    later = run_end - same - 1  # partners of entry `same[k]`: same[k]+1 .. run_end-1
    mask = np.uint64((1 << index_bits) - 1)
    cut = np.searchsorted(np.cumsum(later), np.arange(PAIR_BATCH, later.sum(), PAIR_BATCH))
    for first, partners in zip(np.split(same, cut), np.split(later, cut), strict=True):
        p = np.repeat(first, partners)
        q = p + 1 + _segment_arange(partners)
        yield (table[p] & mask).astype(np.int64), (table[q] & mask).astype(np.int64)


def _within(values: np.ndarray, i: np.ndarray, j: np.ndarray, radius: int) -> np.ndarray:
    return np.bitwise_count(values[i] ^ values[j]) <= radius


def _pair_codes(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)


def _decode(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.unique(codes)
    return (codes >> np.uint64(32)).astype(np.int64), (codes & np.uint64(0xFFFFFFFF)).astype(
        np.int64
    )


@dataclass
class _Collapsed:
    """Distinct hash values, and which items hold each (items grouped by value)."""

    values: np.ndarray  # uint64, distinct (sorted, unless no hash repeats: then as given)
    inverse: np.ndarray  # item -> its value's position
    members: np.ndarray  # items ordered by value
    offsets: np.ndarray  # members of value v: members[offsets[v]:offsets[v + 1]]

    @classmethod
    def of(cls, hashes: np.ndarray) -> _Collapsed:
        n = hashes.size
        ordered = np.sort(hashes)  # a value sort is ~10x cheaper than an argsort: try it first
        if not (ordered[1:] == ordered[:-1]).any():  # all distinct: every item is its value
            identity = np.arange(n, dtype=np.int64)
            return cls(hashes, identity, identity, np.arange(n + 1, dtype=np.int64))
        members = np.argsort(hashes, kind="stable")  # grouped by value, by position within
        ordered = hashes[members]
        starts = np.r_[True, ordered[1:] != ordered[:-1]]
        inverse = np.empty(n, np.int64)
        inverse[members] = np.cumsum(starts) - 1
        offsets = np.r_[np.flatnonzero(starts), n]
        return cls(ordered[starts], inverse, members, offsets)

    def counts(self, v: np.ndarray) -> np.ndarray:
        return self.offsets[v + 1] - self.offsets[v]

    def expand(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (item of value a[k], item of value b[k]) for each k."""
        ca, cb = self.counts(a), self.counts(b)
        n = ca * cb
        k = np.repeat(np.arange(a.size), n)
        within = _segment_arange(n)
        ia = self.members[self.offsets[a][k] + within // cb[k]]
        ib = self.members[self.offsets[b][k] + within % cb[k]]
        return ia, ib

    def identical_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every two items that hold the same value."""
        c = self.counts(np.arange(self.values.size))
        v = np.flatnonzero(c > 1)
        # entry e of value v pairs with entries e+1.. of v
        first = np.repeat(v, c[v])
        position = _segment_arange(c[v])
        later = c[first] - position - 1
        a = np.repeat(self.offsets[first] + position, later)
        b = a + 1 + _segment_arange(later)
        return self.members[a], self.members[b]


def _value_pairs(values: np.ndarray, p: Plan, tables: Iterator[np.ndarray]) -> np.ndarray:
    """Codes of every two distinct values within ``p.radius`` (from the sorted tables)."""
    found = [np.empty(0, np.uint64)]
    for table in tables:
        for i, j in _shared_key_pairs(table, p.index_bits):
            keep = _within(values, i, j, p.radius)
            found.append(_pair_codes(i[keep], j[keep]))
    return np.concatenate(found)


def _ordered(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo))
    return lo[order], hi[order]


def near_pairs(hashes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of items whose hashes are within Hamming distance ``radius``.

    Exact: no pair within ``radius`` is missed, none beyond it is returned. Tables are built
    and dropped one at a time (memory: a few arrays of ``n`` uint64).

    Args:
        hashes: uint64 (or int64 bit patterns), shape ``(n,)``.
        radius: 0-32.

    Returns:
        ``(i, j)``: int64 item positions, ``i < j``, sorted by ``(i, j)``. Items with identical
        hashes are all paired (``k`` copies give ``k(k-1)/2`` pairs).
    """
    h = as_hashes(hashes)
    c = _Collapsed.of(h)
    p = plan(c.values.size, radius)
    a, b = _decode(_value_pairs(c.values, p, _streamed_tables(c.values, p)))
    ia, ib = c.expand(a, b)
    sa, sb = c.identical_pairs()
    return _ordered(np.r_[ia, sa], np.r_[ib, sb])


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph on ``n`` nodes with edges ``(i, j)``: each node's
    label is the smallest node of its component (vectorised union-find: hook every edge's
    larger root under the smaller, then compress paths fully; repeat for edges still apart)."""
    parent = np.arange(n, dtype=np.int64)
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    while i.size:
        ri, rj = parent[i], parent[j]
        np.minimum.at(parent, np.maximum(ri, rj), np.minimum(ri, rj))
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        apart = parent[i] != parent[j]
        i, j = i[apart], j[apart]
    return parent


def leaders(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Star groups over pairs ``(i, j)``, ``i < j``: in position order, an item joins the first
    earlier *leader* it is paired with; an item paired with no earlier leader leads a group
    of its own. Every member is within the radius of its leader, so a group spans at most
    twice the radius: no chain of near pictures grows one group across unrelated ones (the
    transitive :func:`components` joined synthetic renders up to 34 bits apart, median 12,
    into one group of 488 at radius 4).

    Returns:
        int64, shape ``(n,)``: each item's leader (its own position for a leader).
    """
    leader = np.arange(n, dtype=np.int64)
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    if not i.size:
        return leader
    by_item = np.lexsort((i, j))  # each item's earlier partners, smallest first
    i, j = i[by_item], j[by_item]
    starts = np.flatnonzero(np.r_[True, j[1:] != j[:-1]])
    is_leader = np.ones(n, dtype=bool)
    # items in ascending order: every partner i < j is decided before j is
    for start, end in zip(starts.tolist(), [*starts[1:].tolist(), j.size]):
        partners = i[start:end]
        led_by = partners[is_leader[partners]]
        if led_by.size:
            leader[j[start]] = led_by[0]
            is_leader[j[start]] = False
    return leader


def groups(hashes: np.ndarray, radius: int, order: np.ndarray | None = None) -> np.ndarray:
    """Near-duplicate groups: the representative item of each item's group.

    Grouping is transitive: items linked by a chain of pairs each within ``radius`` are one
    group, even when the chain's ends are farther apart than ``radius``.

    Args:
        hashes: uint64 (or int64 bit patterns), shape ``(n,)``.
        radius: 0-32.
        order: optional priorities, shape ``(n,)`` (any sortable dtype): the representative
            of a group is its item with the smallest ``order``, then the smallest position.

    Returns:
        int64, shape ``(n,)``: the position of the item's group representative (an item with
        no near duplicate is its own).
    """
    h = as_hashes(hashes)
    n = h.size
    c = _Collapsed.of(h)
    p = plan(c.values.size, radius)
    a, b = _decode(_value_pairs(c.values, p, _streamed_tables(c.values, p)))
    group = components(c.values.size, a, b)[c.inverse]  # identical hashes: one value
    if order is None:  # the smallest position of each group
        by_priority = rank = np.arange(n, dtype=np.int64)
    else:
        if np.shape(order) != (n,):
            raise ValueError(f"order must have shape ({n},), got {np.shape(order)}")
        by_priority = np.lexsort((np.arange(n), np.asarray(order)))
        rank = np.empty(n, np.int64)
        rank[by_priority] = np.arange(n)
    first = np.full(c.values.size, n, np.int64)
    np.minimum.at(first, group, rank)
    return by_priority[first[group]]


class HashIndex:
    """The tables of :func:`near_pairs` kept in memory, to look up new hashes repeatedly.

    Memory: one uint64 per distinct hash per table (at 13.5M hashes and radius 4, 35 tables:
    3.8 GB); :func:`near_pairs` builds one table at a time instead.

    Args:
        hashes: the base hashes, uint64, shape ``(n,)``.
        radius: 0-32.
    """

    def __init__(self, hashes: np.ndarray, radius: int):
        self.hashes = as_hashes(hashes)
        self._collapsed = _Collapsed.of(self.hashes)
        self.plan = plan(self._collapsed.values.size, radius)
        values = self._collapsed.values
        self._by_value = np.argsort(values) if radius == 0 else None
        positions = np.arange(values.shape[0], dtype=np.uint64)
        self._tables = [
            _sorted_table(values, self.plan.runs(t), self.plan.index_bits, positions)
            for t in self.plan.tables
        ]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """What :func:`near_pairs` returns for the base hashes."""
        c = self._collapsed
        a, b = _decode(_value_pairs(c.values, self.plan, iter(self._tables)))
        ia, ib = c.expand(a, b)
        sa, sb = c.identical_pairs()
        return _ordered(np.r_[ia, sa], np.r_[ib, sb])

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (query, base item) within the radius.

        Args:
            queries: uint64, shape ``(q,)``.

        Returns:
            ``(query position, base item position)``, int64, sorted.
        """
        q = as_hashes(queries)
        c, p = self._collapsed, self.plan
        values = c.values
        if values.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if p.radius == 0:  # exact matches: one binary search in the sorted values
            at = np.minimum(np.searchsorted(values[self._by_value], q), values.size - 1)
            qa = np.flatnonzero(values[self._by_value[at]] == q)
            vb = self._by_value[at[qa]]
        else:
            found = [np.empty(0, np.uint64)]
            mask = np.uint64((1 << p.index_bits) - 1)
            for t, table in zip(p.tables, self._tables, strict=True):
                key = table_keys(q, p.runs(t)) << np.uint64(p.index_bits)
                by_key = np.argsort(key)  # sorted needles: the searches walk the table in order
                key = key[by_key]
                lo = np.searchsorted(table, key)
                hi = np.searchsorted(table, key + (mask + np.uint64(1)))
                qi = np.repeat(by_key, hi - lo)
                v = (table[np.repeat(lo, hi - lo) + _segment_arange(hi - lo)] & mask).astype(
                    np.int64
                )
                keep = np.bitwise_count(q[qi] ^ values[v]) <= p.radius
                found.append(
                    (qi[keep].astype(np.uint64) << np.uint64(32)) | v[keep].astype(np.uint64)
                )
            qa, vb = _decode(np.concatenate(found))
        counts = c.counts(vb)
        query = np.repeat(qa, counts)
        base = c.members[np.repeat(c.offsets[vb], counts) + _segment_arange(counts)]
        order = np.lexsort((base, query))
        return query[order], base[order]
