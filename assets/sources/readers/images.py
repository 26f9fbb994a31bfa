"""Finding the image file an annotation names among the files of its source.

Every reader resolves an image reference the same way (docs/FORMATS.md, "Image references"):

- A remote URL (a scheme in ``base.REMOTE_SCHEMES``) is taken as it is, never looked up.
- Absolute paths, other schemes and ``..`` that leave the root from the format's base folder
  are ``parse_path_escape`` (:meth:`Source.image_uri`, as before).
- A source whose folder holds no image file at all is annotation-only (a common download):
  its refs become URIs the old way, from the format's base folder, unchecked, and the source's
  :class:`ImageIndex` says ``present = False``.
- Otherwise the ref is looked up in the :class:`ImageIndex` built once per source from
  :meth:`Source.find` (one listing, no ``exists`` call per image): first as a path relative to
  each candidate folder in the format's documented order, then by file name within those
  folders when exactly one file there has it. A ref found nowhere is ``image_missing``, with
  a one-line detail naming the ref and the folders tried: never a made-up URI.

Folders are root-relative posix paths (``""`` is the root).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    IMAGE_EXTENSIONS,
    REMOTE_SCHEMES,
    ParseError,
    Source,
    remote_refs,
    url_scheme,
)

log = logging.getLogger(__name__)

#: relative refs that need :func:`resolve`'s full treatment (anything else is joined in Arrow):
#: empty, absolute, a scheme or drive, a backslash, ``//``, ``.`` or ``..`` parts, a trailing /
UNSAFE_REF = r"^$|^/|[:\\]|//|(^|/)\.\.?(/|$)|/$"


class ImageIndex:
    """The files under one source root by root-relative path, listed once.

    ``present`` says whether any of them is an image file (by extension): a source without one
    is annotation-only and its refs are not looked up. Lookups use every file, so a ref that
    names a file of an unusual type is found (the image probe judges it), not "missing".

    Args:
        root: the source root, as in ``Source.root``.
        files: absolute paths in the source's filesystem (``Source.find``), sorted.
    """

    def __init__(self, root: str, files: Iterable[str]):
        prefix = root.rstrip("/") + "/" if root else ""  # an archive's root may be ""
        cut = len(prefix)
        self.files: dict[str, str] = {p[cut:]: p for p in files if p.startswith(prefix)}
        self.present = any(rel.lower().endswith(IMAGE_EXTENSIONS) for rel in self.files)
        #: refs of an annotation-only source taken unchecked (what ingest may report)
        self.unchecked = 0
        self._stems: dict[str, str] | None = None
        self._names: dict[str, list[str]] | None = None
        self._keys: pa.Array | None = None

    def exact(self, rel: str) -> str | None:
        """The absolute path of the file at root-relative ``rel``, None when there is none."""
        return self.files.get(rel)

    def with_stem(self, rel_stem: str) -> str | None:
        """The image file whose root-relative path without extension is ``rel_stem`` (any
        image extension; the first in sorted order when several), None when there is none."""
        if self._stems is None:
            self._stems = {}
            for rel in sorted(self.files):
                if rel.lower().endswith(IMAGE_EXTENSIONS):
                    self._stems.setdefault(posixpath.splitext(rel)[0], self.files[rel])
        return self._stems.get(rel_stem)

    def named(self, name: str, folders: Sequence[str]) -> list[str]:
        """Root-relative paths of the files called ``name`` directly inside one of
        ``folders``, in sorted order."""
        if self._names is None:
            self._names = {}
            for rel in self.files:
                self._names.setdefault(posixpath.basename(rel), []).append(rel)
        wanted = set(folders)
        return [rel for rel in self._names.get(name, ()) if posixpath.dirname(rel) in wanted]

    def keys(self) -> pa.Array:
        """Every root-relative path, as an Arrow array (for lookups of a whole column)."""
        if self._keys is None:
            self._keys = pa.array(list(self.files), pa.string())
        return self._keys


def index_of(source: Source) -> ImageIndex:
    """The source's files by root-relative path, for finding the images annotations name;
    built once per source from ``Source.find`` (no call per image) and kept on it."""
    index = getattr(source, "_image_index", None)
    if index is None:
        index = source._image_index = ImageIndex(source.root, source.find())
    return index


class Candidates(NamedTuple):
    """Where a format looks for the images its annotations name.

    Attributes:
        folders: root-relative folders in the documented order of preference.
        fallback: the absolute folder refs hang from in an annotation-only source (the
            format's base folder); a ``..`` that leaves the root from it is
            ``parse_path_escape``.
    """

    folders: tuple[str, ...]
    fallback: str


def folder_of(source: Source, path: str) -> str:
    """The root-relative folder of a file of the source (``""`` for the root)."""
    folder = posixpath.dirname(source.relpath(path))
    return "" if folder == "." else folder


def relative(folder: str, ref: str) -> str | None:
    """``ref`` joined to a root-relative folder and normalised; None when it leaves the root
    or names the root itself."""
    joined = posixpath.normpath(posixpath.join(folder, ref) if folder else ref)
    if joined in (".", "..") or joined.startswith(("../", "/")):
        return None
    return joined


def candidates(folders: Iterable[str | None], fallback: str) -> Candidates:
    """:class:`Candidates` of normalised folders, without repeats or those outside the root."""
    seen: dict[str, None] = {}
    for folder in folders:
        if folder is None:
            continue
        rel = "" if folder in ("", ".") else relative("", folder.replace("\\", "/"))
        if rel is not None:
            seen.setdefault(rel, None)
    return Candidates(tuple(seen), fallback)


def find(index: ImageIndex, ref: str, folders: Sequence[str]) -> str | int:
    """The absolute path of the file ``ref`` names: the first folder where ``ref`` is an exact
    relative path, else the one file of its name in the folders. Otherwise the number of
    files of that name there (0: none; more than 1: ambiguous)."""
    for folder in folders:
        rel = relative(folder, ref)
        if rel is not None and (path := index.files.get(rel)) is not None:
            return path
    named = index.named(posixpath.basename(ref), folders)
    return index.files[named[0]] if len(named) == 1 else len(named)


def show_folders(folders: Sequence[str]) -> str:
    """The folders tried, as a user reads them (``<root>`` for the root)."""
    return ", ".join(f"{folder}/" if folder else "<root>/" for folder in folders) or "none"


def missing(ref: str, folders: Sequence[str], where: str, same_name: int = 0) -> ParseError:
    """The ``image_missing`` error of a ref found in none of ``folders``."""
    why = (
        f"{same_name} files named {posixpath.basename(ref)!r} there, none at that path"
        if same_name > 1
        else "not among the source's files"
    )
    return ParseError(
        Reason.IMAGE_MISSING,
        f"{where}: image {ref!r}: {why} (tried {show_folders(folders)})",
    )


def annotation_only(source: Source, index: ImageIndex, refs: int = 1) -> None:
    """Count refs of a source without image files taken unchecked (logged once a source)."""
    if index.unchecked == 0:
        log.info(
            "source %s holds no image files: image refs are kept as written, unchecked",
            source.source_id,
        )
    index.unchecked += refs


def resolve(source: Source, ref: str, where: str, places: Candidates) -> str:
    """The URI of the image ``ref`` names (docs/FORMATS.md, "Image references").

    Raises:
        ParseError: ``parse_path_escape`` for a ref that may not be resolved at all,
            ``image_missing`` for one that is not among the source's files.
    """
    if url_scheme(ref) in REMOTE_SCHEMES:
        return ref
    uri = source.image_uri(ref, places.fallback)  # raises parse_path_escape
    index = index_of(source)
    if not index.present:
        annotation_only(source, index)
        return uri
    ref = ref.replace("\\", "/")
    found = find(index, ref, places.folders)
    if isinstance(found, str):
        return source.url(found)
    raise missing(ref, places.folders, where, found)


def resolve_column(
    source: Source, refs: pa.Array, where: str, places: Candidates
) -> tuple[pa.Array, dict[int, ParseError]]:
    """:func:`resolve` for a column of refs, in Arrow for plain relative names: a membership
    test of the whole column per candidate folder, not a Python call per ref. Returns the
    URIs (null where there is none) and the error of each ref that has none, by position;
    a null ref is ``parse_missing_file``."""
    remote = remote_refs(refs)
    unsafe = pc.fill_null(pc.match_substring_regex(refs, UNSAFE_REF), True)
    plain = ~unsafe.to_numpy(zero_copy_only=False) & ~remote
    index = index_of(source)
    if index.present:
        uris, rest = _found_in_arrow(source, index, refs, plain, places.folders)
    else:
        uris, rest = _joined(source, refs, plain, places.fallback)
        if plain.any():
            annotation_only(source, index, int(plain.sum()))
    problems: dict[int, ParseError] = {}
    rest_at = np.flatnonzero(rest & ~remote)
    if rest_at.size:
        fixed = uris.to_pylist()
        for i in rest_at.tolist():
            ref = refs[i].as_py()
            try:
                if ref is None:
                    raise ParseError(Reason.PARSE_MISSING_FILE, f"{where}: the image has no name")
                fixed[i] = resolve(source, ref, where, places)
            except ParseError as exc:
                problems[i] = exc
        uris = pa.array(fixed, pa.string())
    if remote.any():
        uris = pc.if_else(pa.array(remote), refs, uris)
    return uris, problems


def _found_in_arrow(
    source: Source, index: ImageIndex, refs: pa.Array, plain: np.ndarray, folders: Sequence[str]
) -> tuple[pa.Array, np.ndarray]:
    """URIs of the plain refs found at an exact path below one of ``folders`` (first folder
    first), and the mask of the refs left for :func:`resolve` (the others and those missed)."""
    todo = np.flatnonzero(plain)
    positions: list[np.ndarray] = []
    found: list[pa.Array] = []
    for folder in folders:
        if not todo.size:
            break
        names = refs.take(pa.array(todo))
        keys = pc.binary_join_element_wise(folder + "/", names, "") if folder else names
        hit = pc.is_in(keys, value_set=index.keys()).to_numpy(zero_copy_only=False)
        positions.append(todo[hit])
        found.append(keys.filter(pa.array(hit)))
        todo = todo[~hit]
    rest = ~plain
    rest[todo] = True
    hits = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    if not hits.size:
        return pa.nulls(len(refs), pa.string()), rest
    at = np.full(len(refs), -1, dtype=np.int64)
    at[hits] = np.arange(len(hits))
    rels = pa.concat_arrays(found)
    uris = _urls(source, source.root, rels, rels[0].as_py())
    return uris.take(pa.array(at, mask=at < 0)), rest


def _joined(
    source: Source, refs: pa.Array, plain: np.ndarray, base: str
) -> tuple[pa.Array, np.ndarray]:
    """URIs of the plain refs of an annotation-only source joined to ``base`` (the old way),
    and the mask of the refs left for :func:`resolve`."""
    plain_at = np.flatnonzero(plain)
    if not plain_at.size:
        return pa.nulls(len(refs), pa.string()), ~plain
    if source.has_links:  # a ref through a symlink out of the root: resolve() rejects it
        plain = plain.copy()
        for i in plain_at.tolist():
            path = posixpath.normpath(posixpath.join(base, refs[i].as_py()))
            plain[i] = source.link_escape(path) is None
    uris = _urls(source, base, refs, refs[int(plain_at[0])].as_py())
    return pc.if_else(pa.array(plain), uris, pa.nulls(len(refs), pa.string())), ~plain


def _urls(source: Source, folder: str, rels: pa.Array, sample: str) -> pa.Array:
    """``source.url(folder + "/" + rel)`` of each plain relative path, as one string join when
    the filesystem's URLs are a prefix plus the path (local files, object stores); ``sample``
    is one of ``rels`` that is not null."""
    full = source.url(posixpath.join(folder, sample))
    prefix = full[: len(full) - len(sample)]
    if full.endswith(sample) and prefix.endswith("/"):
        return pc.binary_join_element_wise(prefix, rels, "")
    return pa.array(
        [None if r is None else source.url(posixpath.join(folder, r)) for r in rels.to_pylist()],
        pa.string(),
    )
