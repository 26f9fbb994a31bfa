"""A streaming scanner for large JSON objects: their top-level arrays decoded in batches.

A JSON file of hundreds of MB is never held as Python objects. It is fed block by block; a
NumPy scanner finds its structure:

- the positions of quotes (a quote preceded by an odd run of backslashes is escaped), and of
  brackets and braces outside strings (string parity = count of real quotes before them);
- the nesting depth after each bracket (a cumulative sum over these sparse positions), with
  the string parity, the backslash run and the depth carried from block to block.

A top-level value opens at depth 1 -> 2; its key is read from the small "skeleton" of the
document (every byte at depth <= 1, with each value replaced by ``[]`` / ``{}``), which is
decoded at the end to validate the top level. Inside a tracked array (:class:`ArrayStream`'s
``sink_types``) an element ends at the bracket that returns to depth 2. Complete elements are
decoded in batches, one contiguous byte span per batch, with msgspec into the sink's Structs
(:class:`Sink`); a batch that does not fit them (a malformed value, ``NaN`` tokens that msgspec
rejects) is decoded generically (msgspec, else the stdlib ``json``, which accepts
``NaN``/``Infinity``): only the elements that need it, the runs between them still go fast.

Top-level values no sink takes (``info``, ``licenses``, ...) are syntax-checked when they are
under ``SKIPPED_CHECK_BYTES``; larger ones only for balanced brackets, closed strings and
UTF-8. A duplicated top-level key keeps its last value, as ``json.load`` does.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol

import msgspec
import numpy as np

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import ParseError, decode_text

#: Top-level values no sink takes (``info``, ``licenses``) are syntax-checked up to this size.
SKIPPED_CHECK_BYTES = 64 << 20
#: The longest key of a top-level value that is recognised (read back from the skeleton).
KEY_TAIL_BYTES = 64 << 10

# byte -> 1 for the characters the scanner looks at: " \ [ ] { }
_INTERESTING = bytes(1 if chr(b) in '"\\[]{}' else 0 for b in range(256))
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = 0x7B, 0x7D  # '{' '}'; '[' ']' | 0x20 give the same
_CLOSER = {0x5B: 0x5D, 0x7B: 0x7D}  # '[' -> ']', '{' -> '}'
_WS = b" \t\r\n"
_BYTE_IN_MSG = re.compile(r"\(byte (\d+)\)")


# --- batches: the fast Structs where they fit, the generic decode where not -----------------
class SlowPath(Exception):
    """Raised by a sink's ``fast``: the batch's values do not fit its fast columns (ids beyond
    int64, ...); the batch then goes to ``slow``."""


class Sink(Protocol):
    """Where the elements of one tracked array go, batch by batch.

    ``fast_type`` is the msgspec type of a batch (``list[SomeStruct]``); ``fast`` takes a
    batch decoded into it and may raise :class:`SlowPath`; ``slow`` takes a batch decoded
    generically (dicts, lists; ``where`` prefixes what a ParseError says). Rows and their
    order must not depend on which of the two took a batch.
    """

    fast_type: ClassVar[object]

    def fast(self, items: list) -> None: ...

    def slow(self, items: list, where: str) -> None: ...


#: misfits of one batch set aside one by one before the rest of the batch goes slow too
MAX_MISFITS = 16
_MISFIT_AT = re.compile(r"at `\$\[(\d+)\]")


def _fast_between_misfits(sink, items: list, where: str) -> None:
    """Feed a decoded batch that the fast Structs did not fit as a whole.

    One bad annotation used to send its whole batch (a whole small file) the slow way, ~10x
    the cost. The elements msgspec names as misfits go slow, one by one; the runs between
    them are re-encoded and go fast. Rows and their order are what ``slow`` alone gives.
    """
    pos = 0
    for _ in range(MAX_MISFITS):
        try:
            _feed_fast(sink, items[pos:], where)
            return
        except msgspec.ValidationError as exc:
            match = _MISFIT_AT.search(str(exc))
            if match is None:
                break
            bad = pos + int(match.group(1))
        if bad > pos:
            _feed_fast(sink, items[pos:bad], where)
        sink.slow(items[bad : bad + 1], where)
        pos = bad + 1
        if pos >= len(items):
            return
    sink.slow(items[pos:], where)


_NONFINITE_TOKENS = (b"NaN", b"Infinity")


def _around_nonfinite(data: bytes, bounds, fast_type) -> list[tuple] | None:
    """Decode a batch that msgspec cannot decode because of NaN/Infinity tokens (``json``
    could) piece by piece, straight from its bytes: the elements that hold such a token with
    ``json`` (adjacent ones together), the runs between them with msgspec. Nothing is fed yet:
    returns the pieces in order, ``("fast", structs, run)``, ``("misfit", items)`` (a run the
    fast Structs do not fit) or ``("slow", items)``; None when the batch is not that case (no
    token, so many that the batch is cheaper slow as a whole, or a piece that does not decode:
    the caller then decodes the whole batch with ``json``).

    ``bounds`` are the start and end (exclusive) of each element in ``data``. A token inside a
    string only sends its element the slow way, which reads it right all the same.
    """
    starts, ends = bounds
    n = len(starts)
    limit = max(MAX_MISFITS, n // 16)  # each split costs two calls of fixed cost
    hits: list[int] = []
    for token in _NONFINITE_TOKENS:
        at = data.find(token)
        while at != -1 and len(hits) <= limit:
            hits.append(at)
            at = data.find(token, at + 1)
    if not hits or len(hits) > limit:
        return None
    bad = sorted(set(np.searchsorted(ends, hits, side="right").tolist()))
    if bad[-1] >= n:
        return None

    def elements(lo: int, hi: int) -> bytes:
        return b"".join((b"[", data[starts[lo] : ends[hi - 1]], b"]"))

    pieces: list[tuple] = []
    pos = 0
    try:
        for lo, hi in [*runs(bad), (n, n)]:
            if lo > pos:
                run = elements(pos, lo)
                try:
                    pieces.append(("fast", msgspec.json.decode(run, type=fast_type), run))
                except msgspec.ValidationError:
                    pieces.append(("misfit", msgspec.json.decode(run)))
            if hi > lo:
                pieces.append(("slow", json.loads(elements(lo, hi))))
            pos = hi
    except (msgspec.DecodeError, ValueError):
        return None
    return pieces


def _feed_pieces(sink, pieces: list[tuple], where: str) -> None:
    """Feed what :func:`_around_nonfinite` decoded, in order."""
    for kind, value, *run in pieces:
        if kind == "slow":
            sink.slow(value, where)
        elif kind == "misfit":
            _fast_between_misfits(sink, value, where)
        else:
            try:
                sink.fast(value)
            except SlowPath:
                _fast_between_misfits(sink, msgspec.json.decode(run[0]), where)


def runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct indices as ``(first, last + 1)`` runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _feed_fast(sink, items: list, where: str) -> None:
    """``items`` (decoded) through the fast path; the slow path when a value does not fit
    the fast columns. Raises msgspec.ValidationError, naming the first misfit."""
    structs = msgspec.json.decode(msgspec.json.encode(items), type=sink.fast_type)
    try:
        sink.fast(structs)
    except SlowPath:
        sink.slow(items, where)


# --- the scanner ------------------------------------------------------------------------------
class Scanner:
    """Structure of a JSON text fed block by block: brackets outside strings and depths."""

    def __init__(self) -> None:
        self.in_string = 0  # 1 when the previous block ended inside a string
        self.backslashes = 0  # length of the backslash run that ended the previous block
        self.depth = 0

    def scan(self, block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Brackets outside strings in ``block``.

        Returns:
            ``pos`` (k,) int64 offsets in the block, ``depth`` (k,) int64 depth after each,
            ``is_open`` (k,) bool.
        """
        raw = np.frombuffer(block, dtype=np.uint8)
        pos = np.flatnonzero(np.frombuffer(block.translate(_INTERESTING), dtype=np.bool_))
        kinds = raw[pos]
        quote = kinds == _QUOTE
        backslash_at = pos[kinds == _BACKSLASH]
        if backslash_at.size or self.backslashes:
            self._unescape(pos, quote, backslash_at, len(block))
        parity = np.cumsum(quote, dtype=np.uint8)  # real quotes up to here, mod 256
        folded = kinds | 0x20
        is_bracket = (folded == _OPEN) | (folded == _CLOSE)
        outside = ((parity + self.in_string) & 1) == 0
        structural = is_bracket & outside
        if parity.size:
            self.in_string = (int(parity[-1]) + self.in_string) & 1
        spos = pos[structural]
        is_open = folded[structural] == _OPEN
        step = np.where(is_open, 1, -1)
        depth = np.cumsum(step) + self.depth
        if depth.size:
            self.depth = int(depth[-1])
        return spos, depth, is_open

    def _unescape(self, pos: np.ndarray, quote: np.ndarray, bs: np.ndarray, n: int) -> None:
        """Clear ``quote`` where a quote follows an odd run of backslashes."""
        quote_idx = np.flatnonzero(quote)
        qpos = pos[quote_idx]
        escaped = np.zeros(len(qpos), dtype=bool)
        carried = self.backslashes
        if bs.size:
            breaks = np.flatnonzero(np.diff(bs) != 1)
            run_start = bs[np.r_[0, breaks + 1]]
            run_end = bs[np.r_[breaks, bs.size - 1]]
            run_len = run_end - run_start + 1
            if carried and run_start[0] == 0:
                run_len[0] += carried
            at = np.minimum(np.searchsorted(run_end, qpos - 1), len(run_end) - 1)
            escaped = (run_end[at] == qpos - 1) & (run_len[at] % 2 == 1)
            self.backslashes = int(run_len[-1]) if run_end[-1] == n - 1 else 0
        else:
            self.backslashes = 0
        if carried % 2 == 1 and qpos.size and qpos[0] == 0:
            escaped[0] = True
        quote[quote_idx[escaped]] = False


class _Value:
    """The top-level value being read: a tracked array, or a value that is skipped."""

    def __init__(self, key: str | None, opener: int, start: int, sink: object | None):
        self.key = key
        self.opener = opener
        self.sink = sink  # the accumulator of a tracked array, None when skipped
        self.last_end = start  # position of '[' or of the end of the last decoded element
        self.pending: int | None = None  # start of an element not yet closed
        self.starts: list[np.ndarray] = []  # complete elements not yet decoded
        self.ends: list[np.ndarray] = []
        self.decoded = 0
        # skipped values are kept (as bytes, up to SKIPPED_CHECK_BYTES) to check their syntax
        self.keep_from: int | None = None if sink is not None else start


class ArrayStream:
    """Reads one JSON object fed block by block: drives the scanner, decodes the elements of
    the tracked top-level arrays in batches into their sinks, keeps the skeleton.

    Args:
        where: the file, as ledger details name it.
        batch_size: elements decoded per msgspec call.
        sink_types: top-level key -> the sink class of the array under that key (a new sink
            per array; a key given twice keeps its last array, as ``json.load`` does).
    """

    def __init__(self, where: str, batch_size: int, sink_types: Mapping[str, Callable[[], Sink]]):
        self.where = where
        self.batch_size = batch_size
        self.sink_types = sink_types
        self.scanner = Scanner()
        self.sinks: dict[str, Sink] = {}
        self.skeleton = bytearray()
        self.skel_from: int | None = 0
        self.value: _Value | None = None
        self.base = 0  # absolute offset of the current block
        self.block = memoryview(b"")
        self.carry = b""  # bytes before the block that a tracked array still needs
        self.carry_at = 0
        self.utf8 = codecs.getincrementaldecoder("utf-8")()

    # -- errors -----------------------------------------------------------------------------
    def invalid(self, what: str) -> ParseError:
        return ParseError(Reason.PARSE_INVALID_JSON, f"{self.where}: {what}")

    # -- bytes --------------------------------------------------------------------------------
    def piece(self, start: int, end: int) -> bytes | memoryview:
        """Bytes [start, end) in absolute offsets (from the carry and the block)."""
        if start >= self.base:
            return self.block[start - self.base : end - self.base]
        head = self.carry[start - self.carry_at : end - self.carry_at]
        if end <= self.base:
            return head
        return head + bytes(self.block[: end - self.base])

    # -- driving ------------------------------------------------------------------------------
    def feed(self, block: bytes) -> None:
        self._check_utf8(block)
        self.block = memoryview(block)
        end = self.base + len(block)
        spos, depth, is_open = self.scanner.scan(block)
        spos += self.base
        if depth.size and depth.min() < 0:
            at = int(spos[np.argmax(depth < 0)])
            raise self.invalid(f"unbalanced closing bracket at byte {at}")
        top = np.flatnonzero(np.where(is_open, depth <= 2, depth <= 1))
        element = np.where(is_open, depth == 3, depth == 2)
        epos, eopen = spos[element], is_open[element]
        cursor = 0
        for t in top.tolist():
            p = int(spos[t])
            upto = int(np.searchsorted(epos, p))
            if self.value is not None and self.value.sink is not None:
                self._elements(epos[cursor:upto], eopen[cursor:upto])
            cursor = upto
            self._top_event(p, int(depth[t]), bool(is_open[t]))
        value = self.value
        if value is not None and value.sink is not None:
            self._elements(epos[cursor:], eopen[cursor:])
            self._decode_pending()
            keep = value.last_end + 1
            self.carry, self.carry_at = bytes(self.piece(keep, end)), keep
        elif value is not None and value.keep_from is not None:
            if end - value.keep_from > SKIPPED_CHECK_BYTES:
                value.keep_from = None  # too big to keep for a syntax check: skip it unchecked
                self.carry, self.carry_at = b"", end
            else:
                self.carry, self.carry_at = bytes(self.piece(value.keep_from, end)), value.keep_from
        else:
            self.carry, self.carry_at = b"", end
        if self.skel_from is not None:
            self.skeleton += self.piece(self.skel_from, end)
            self.skel_from = end
        self.base = end

    def _check_utf8(self, block: bytes) -> None:
        if block.isascii() and not self.utf8.getstate()[0]:
            return
        try:
            self.utf8.decode(block)
        except UnicodeDecodeError as exc:
            raise ParseError(
                Reason.PARSE_BAD_ENCODING,
                f"{self.where} is not UTF-8 (byte {self.base + exc.start}: {exc.reason})",
            ) from None

    def _top_event(self, p: int, depth: int, is_open: bool) -> None:
        char = self.block[p - self.base]
        if is_open and depth == 1:
            if char != 0x7B:
                raise self.invalid("the top-level JSON value is not an object")
        elif is_open:  # a top-level value opens (depth 1 -> 2)
            self.skeleton += self.piece(self.skel_from, p)
            key = self._last_key()
            self.skeleton += b"[]" if char == 0x5B else b"{}"
            self.skel_from = None
            sink = None
            if key in self.sink_types and char == 0x5B:
                sink = self.sinks[key] = self.sink_types[key]()
            self.value = _Value(key, char, p, sink)
        elif depth == 1:  # a top-level value closes (2 -> 1)
            value = self.value
            if value is None or _CLOSER[value.opener] != char:
                raise self.invalid(f"mismatched closing bracket at byte {p}")
            if value.sink is not None:
                self._decode_pending()
                tail = bytes(self.piece(value.last_end + 1, p))
                if tail.strip(_WS):
                    raise self.invalid(
                        f"unexpected {tail.strip(_WS)[:40]!r} in {value.key!r} at byte "
                        f"{value.last_end + 1} (a trailing comma, or an element that is not an "
                        "object)"
                    )
            elif value.keep_from is not None:
                self._check_skipped(value, bytes(self.piece(value.keep_from, p + 1)))
            self.value = None
            self.skel_from = p + 1

    def _check_skipped(self, value: _Value, data: bytes) -> None:
        """Syntax check of a top-level value the reader does not use (e.g. ``info``)."""
        try:
            msgspec.json.decode(data, type=msgspec.Raw)
        except msgspec.DecodeError as exc:
            try:
                json.loads(data)  # NaN/Infinity
            except ValueError:
                match = _BYTE_IN_MSG.search(str(exc))
                at = f" at byte {value.keep_from + int(match.group(1))}" if match else ""
                message = _BYTE_IN_MSG.sub("", str(exc)).strip()
                raise self.invalid(f"{message} in {value.key!r}{at}") from None

    def _last_key(self) -> str | None:
        """The key just before a top-level value: read back from the skeleton's tail."""
        tail = bytes(self.skeleton[-KEY_TAIL_BYTES:]).rstrip(_WS)
        if not tail.endswith(b":"):
            return None
        tail = tail[:-1].rstrip(_WS)
        if not tail.endswith(b'"'):
            return None
        end = len(tail) - 1
        while True:
            start = tail.rfind(b'"', 0, end)
            if start < 0:
                return None
            run = start - len(tail[:start].rstrip(b"\\"))
            if run % 2 == 0:
                break
            end = start
        try:
            return json.loads(tail[start:])
        except ValueError:
            return None

    def _elements(self, pos: np.ndarray, is_open: np.ndarray) -> None:
        """Record the element boundaries (depth 2 <-> 3) of the tracked array."""
        if not pos.size:
            return
        value = self.value
        starts, ends = pos[is_open], pos[~is_open]
        if value.pending is not None:
            starts = np.r_[value.pending, starts]
        done = len(ends)
        value.pending = int(starts[done]) if len(starts) > done else None
        if done:
            value.starts.append(starts[:done])
            value.ends.append(ends)

    def _decode_pending(self) -> None:
        value = self.value
        if not value.ends:
            return
        starts, ends = np.concatenate(value.starts), np.concatenate(value.ends)
        value.starts, value.ends = [], []
        for lo in range(0, len(ends), self.batch_size):
            hi = min(lo + self.batch_size, len(ends))
            first, last = int(starts[lo]), int(ends[hi - 1])
            gap = bytes(self.piece(value.last_end + 1, first)).strip(_WS)
            if gap != (b"," if value.decoded else b""):
                raise self.invalid(f"unexpected {gap[:40]!r} in {value.key!r} before byte {first}")
            data = b"".join((b"[", self.piece(first, last + 1), b"]"))
            bounds = (starts[lo:hi] - first + 1, ends[lo:hi] - first + 2)  # elements in data
            self._decode(value, data, first, bounds)
            value.decoded += hi - lo
            value.last_end = last

    def _decode(self, value: _Value, data: bytes, first: int, bounds) -> None:
        sink = value.sink
        where = f"{self.where}: "
        try:
            sink.fast(msgspec.json.decode(data, type=sink.fast_type))
            return
        except (msgspec.ValidationError, SlowPath):
            error = None  # well-formed JSON that the fast Structs do not fit
        except msgspec.DecodeError as exc:
            error = exc  # NaN/Infinity tokens, or really malformed
            pieces = _around_nonfinite(data, bounds, sink.fast_type)
            if pieces is not None:
                _feed_pieces(sink, pieces, where)
                return
        items = None
        if error is None:
            try:
                items = msgspec.json.decode(data)
            except msgspec.DecodeError as exc:  # numbers beyond float range, ...
                error = exc
        if items is None:
            try:
                items = json.loads(data)
            except ValueError:
                match = _BYTE_IN_MSG.search(str(error))
                at = f" at byte {first - 1 + int(match.group(1))}" if match else ""
                message = _BYTE_IN_MSG.sub("", str(error)).strip()
                raise self.invalid(f"{message} in {value.key!r}{at}") from None
        if error is None:
            _fast_between_misfits(sink, items, where)
        else:
            sink.slow(items, where)

    def finish(self) -> dict:
        """End of the file: check it is complete, decode the skeleton, return the top level."""
        self.utf8_final()
        if self.scanner.in_string or self.scanner.depth != 0:
            where = "a string" if self.scanner.in_string else f"nesting depth {self.scanner.depth}"
            raise self.invalid(f"truncated JSON: the file ends inside {where} at byte {self.base}")
        if not bytes(self.skeleton).strip():
            raise ParseError(Reason.PARSE_EMPTY_FILE, f"{self.where} is empty")
        try:
            top = msgspec.json.decode(self.skeleton)
        except msgspec.DecodeError as exc:
            try:
                top = json.loads(bytes(self.skeleton))
            except ValueError:
                message = _BYTE_IN_MSG.sub("", str(exc)).strip()  # skeleton offsets: not the file's
                raise self.invalid(f"malformed top level: {message}") from None
        if not isinstance(top, dict):
            raise self.invalid("the top-level JSON value is not an object")
        return top

    def utf8_final(self) -> None:
        try:
            self.utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ParseError(
                Reason.PARSE_BAD_ENCODING, f"{self.where} is not UTF-8 (ends inside a character)"
            ) from None


def open_utf8(f: io.BufferedIOBase, where: str) -> tuple[io.IOBase, bytes]:
    """Skip a UTF-8 BOM; decode a UTF-16/32 file (with its BOM) whole into UTF-8 bytes."""
    head = f.read(4)
    if head.startswith(b"\xef\xbb\xbf"):
        return f, head[3:]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        text = decode_text(head + f.read(), where)
        return io.BytesIO(text.encode("utf-8")), b""
    return f, head
