"""A tokenizer for the primitive format.

Pieces, in this order of ids: control tokens, the six primitive specials, one token per
coordinate bin ``0..999`` (any integer 0..999 in the text is one token), the digits (for
longer numbers), printable ASCII characters (punctuation, space, letters as a fallback), and
a small word vocabulary (whole words seen in the camps' prompts and targets). Decoding is
lossless for ASCII text; any other character becomes ``<unk>``.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable

CONTROL = ("<pad>", "<bos>", "<eos>", "<unk>")
SPECIALS = ("<|ref|>", "<|/ref|>", "<|box|>", "<|/box|>", "<|point|>", "<|/point|>")
N_BINS = 1000
CHARS = tuple(dict.fromkeys(string.digits + string.punctuation + " \n" + string.ascii_letters))
_PIECE = re.compile(r"<\|/?(?:ref|box|point)\|>|\d+|[A-Za-z]+|.", re.DOTALL)


class Tokenizer:
    """Args: words: the word vocabulary (order kept; duplicates and non-words dropped)."""

    def __init__(self, words: Iterable[str] = ()):
        self.words = [w for w in dict.fromkeys(words) if re.fullmatch(r"[A-Za-z]{2,}", w)]
        pieces = [*CONTROL, *SPECIALS, *(f"<{i}>" for i in range(N_BINS)), *CHARS, *self.words]
        self.pieces = pieces
        self.ids = {p: i for i, p in enumerate(pieces)}
        self.pad, self.bos, self.eos, self.unk = (self.ids[c] for c in CONTROL)
        self._bin0 = self.ids["<0>"]

    @classmethod
    def build(cls, texts: Iterable[str], max_words: int = 2000, min_count: int = 2) -> Tokenizer:
        """Word vocabulary: the ``max_words`` most frequent words seen ``min_count`` times."""
        counts = Counter(w for t in texts for w in re.findall(r"[A-Za-z]{2,}", t))
        words = [w for w, c in counts.most_common() if c >= min_count][:max_words]
        return cls(sorted(words))

    @classmethod
    def for_rows(cls, rows: Iterable[dict]) -> Tokenizer:
        """:meth:`build` on camp rows: the words of their prompts and targets."""
        return cls.build(r["prompt"] + " " + r["target"] for r in rows)

    def __len__(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for piece in _PIECE.findall(text):
            if piece in self.ids and not piece.isdigit():
                out.append(self.ids[piece])
            elif piece.isdigit():
                if len(piece) <= 3 and str(int(piece)) == piece:
                    out.append(self._bin0 + int(piece))
                else:
                    out.extend(self.ids[c] for c in piece)
            elif piece.isascii() and piece.isalpha():
                out.extend(self.ids[c] for c in piece)
            else:
                out.append(self.ids.get(piece, self.unk))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        parts = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i in (self.pad, self.bos):
                continue
            if self._bin0 <= i < self._bin0 + N_BINS:
                parts.append(str(i - self._bin0))
            elif 0 <= i < len(self.pieces):
                parts.append(self.pieces[i])
        return "".join(parts)

    def to_json(self) -> str:
        return json.dumps({"words": self.words})

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        return cls(json.loads(text)["words"])
