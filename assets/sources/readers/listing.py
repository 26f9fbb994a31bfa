"""How a source's files are listed and opened: a local folder scanned once (symlinks that
leave it are escapes, never read), a ``.zip`` archive read in place, and ``.gz``/``.zst``
files decompressed while streamed (docs/FORMATS.md, general rules)."""

from __future__ import annotations

import io
import os
import posixpath
import zlib
from dataclasses import dataclass, field
from typing import IO

import fsspec
import fsspec.compression
import pyarrow as pa
from fsspec.implementations.zip import ZipFileSystem

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.errors import ParseError

#: compressed annotation files are read in place, decompressed while streamed: the suffix
#: and fsspec's name of its codec (``x.json.gz`` is a ``.json`` file to every reader)
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
_COMPRESSED_SUFFIXES = tuple(COMPRESSIONS)


def _pyarrow_zstd(infile: IO[bytes], mode: str = "rb", **kwargs: object) -> IO[bytes]:
    """fsspec's zstd codec needs the ``zstandard`` package; pyarrow has zstd built in."""
    if "r" not in mode:
        raise ValueError("vprim reads .zst files only")
    return pa.CompressedInputStream(infile, "zstd")


if "zstd" not in fsspec.compression.compr:  # fsspec registers its own when zstandard exists
    fsspec.compression.register_compression("zstd", _pyarrow_zstd, "zst")


def compression_of(path: str) -> str | None:
    """fsspec's codec name for a compressed file's suffix (``gzip``, ``zstd``), else None."""
    if not path.lower().endswith(_COMPRESSED_SUFFIXES):
        return None
    return COMPRESSIONS[path[path.rindex(".") :].lower()]


def has_suffix(path: str, suffixes: tuple[str, ...]) -> bool:
    """Whether ``path``, lower case and without a compression suffix, ends with one of
    ``suffixes`` (lower case, with the dot)."""
    lower = path.lower()
    if lower.endswith(_COMPRESSED_SUFFIXES):
        lower = lower[: lower.rindex(".")]
    return lower.endswith(suffixes)


def plain_name(path: str) -> str:
    """``path`` without a compression suffix: ``a/instances.json.gz`` -> ``a/instances.json``."""
    if path.lower().endswith(_COMPRESSED_SUFFIXES):
        return path[: path.rindex(".")]
    return path


@dataclass
class Listing:
    """What listing a source's root found, once per source."""

    files: list[str]
    #: (path, detail) of every entry that leaves the root: a symlink that points out of it,
    #: an archive member named ``../x`` or ``/x``; never read, each one ledger row
    escapes: list[tuple[str, str]] = field(default_factory=list)
    #: every symlink under a local root: a path through one is resolved before it is used
    links: frozenset[str] = frozenset()
    real_root: str = ""


def within(path: str, root: str) -> bool:
    """Whether a real (resolved) local path is ``root`` or under it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan_local(root: str) -> Listing:
    """Files under a local folder. Only symlinks cost a ``realpath`` (:func:`_add_link`)."""
    listing = Listing([], real_root=os.path.realpath(root))
    links: set[str] = set()
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        links.add(entry.path)
                        _add_link(listing, entry, root)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        listing.files.append(entry.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    listing.links = frozenset(links)
    return listing


def _add_link(listing: Listing, entry: os.DirEntry, root: str) -> None:
    """A symlink under a local root: an escape when it points out of the root, listed when
    it is a file inside; a folder inside is not walked (its files are listed where they are)."""
    target = os.path.realpath(entry.path)
    if not within(target, listing.real_root):
        detail = f"{os.path.relpath(entry.path, root)} is a link to {target}, outside the source"
        listing.escapes.append((entry.path, detail))
    elif not entry.is_dir():
        listing.files.append(entry.path)


def _leaves_archive(name: str) -> bool:
    """Whether an archive member's name is absolute (``/x``, ``C:x``) or leaves it (``../x``)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    normal = posixpath.normpath(name)
    return normal == ".." or normal.startswith("../")


def zip_listing(zfs: ZipFileSystem, root: str) -> tuple[str, Listing]:
    """An archive's root (given, else its one top-level folder, else the archive root) and
    its files, from the archive's own directory. Members named ``../x`` or ``/x``, or that
    name the root and then leave it, are escapes; macOS's ``__MACOSX/`` resource forks are
    not the dataset's files."""
    names = [
        info.filename
        for info in zfs.zip.infolist()
        if not info.is_dir() and not info.filename.startswith("__MACOSX/")
    ]
    names = list(dict.fromkeys(names))  # a name written twice is one file
    if not root:
        safe = [name for name in names if not _leaves_archive(name)]
        tops = {name.split("/", 1)[0] for name in safe}
        if len(tops) == 1 and all("/" in name for name in safe):
            root = tops.pop()
    prefix = root + "/" if root else ""
    listing = Listing([])
    for name in names:
        if not name.startswith(prefix) and not _leaves_archive(name):
            continue  # another folder of the archive than the source's
        if _leaves_archive(name) or not posixpath.normpath(name).startswith(prefix):
            listing.escapes.append((name, f"archive member {name!r} leaves the source folder"))
        else:
            listing.files.append(name)
    return root, listing


def is_archive(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """Whether a catalog path is a ``.zip`` file (a folder named ``x.zip`` is a folder)."""
    zipped = path.lower().endswith(".zip") and not isinstance(fs, ZipFileSystem)
    return zipped and not fs.isdir(path)


class Decompressing(io.RawIOBase):
    """A decompressing stream whose errors are ParseErrors: a corrupt or truncated ``.gz``
    or ``.zst`` file is that file's ledger row (``parse_bad_encoding``), never a traceback.
    Wrapped in ``io.BufferedReader`` for ``readline`` and line iteration."""

    def __init__(self, raw: IO[bytes], stream: IO[bytes], codec: str, where: str):
        super().__init__()
        self._raw, self._stream, self._codec, self._where = raw, stream, codec, where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except (OSError, EOFError, zlib.error) as exc:
            detail = f"{self._where} is not valid {self._codec} data ({exc})"
            raise ParseError(Reason.PARSE_BAD_ENCODING, detail) from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                self._raw.close()
        super().close()
