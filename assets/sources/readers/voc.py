"""Pascal VOC reader: one ``<annotation>`` XML file per image (docs/FORMATS.md, section voc).

A file in the plain layout most tools write is read with regular expressions
(:func:`_plain_voc`), any other file by walking its element tree (:func:`_tree_voc`); both
give the same values, and :meth:`VocReader.read_file` applies the rules to them. A file with a
DOCTYPE is parsed with defusedxml: entity declarations and external references are refused,
so a hostile file is data only and becomes ``parse_invalid_xml``.
"""

from __future__ import annotations

import functools
import posixpath
import re
import xml.etree.ElementTree as ET
from itertools import chain

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    BoxReject,
    FormatReader,
    ParseError,
    ReadResult,
    Source,
    decode_text,
    image_dimension,
    kept_indexes,
    plain_name,
    reject_image,
)
from vprim.assets.sources.readers.columns import ImageBoxes, flat, packed
from vprim.assets.sources.readers.images import Candidates, candidates, folder_of, resolve

_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")
_VOC_ROOT = re.compile(r"<annotation[\s>/]")
_COORDS = ("xmin", "ymin", "xmax", "ymax")
_PLAIN_ATTRIBUTES = ("pose", "truncated", "difficult", "occluded")
_DETECT_PEEK = 20  # files peeked by detect()


def _text(element: ET.Element | None) -> str | None:
    """The stripped text of an element; None when the element is absent."""
    if element is None:
        return None
    return (element.text or "").strip()


def _xml_text(data: bytes, where: str) -> str:
    """Decode XML bytes: UTF-8/UTF-16/UTF-32 as everywhere, else the encoding it declares."""
    try:
        return decode_text(data, where)
    except ParseError as exc:
        if exc.reason != Reason.PARSE_BAD_ENCODING:
            raise
        declared = _DECLARED_ENCODING.match(data)
        if declared is None:
            raise
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, ValueError):
            raise exc from None


#: what a VOC file says, before any rule is applied: ``(filename, width, height, labels,
#: corners, attributes, clean, folder)``, texts stripped (None: no such element), per
#: ``<object>`` its label (None: no ``<name>``), its corners (a string: what is wrong with its
#: ``<bndbox>``) and its attributes; ``clean``: every object has a label and a box
_VocRead = tuple


def _absolute(folder: str) -> bool:
    """Whether a ``<folder>`` text is an absolute path (labelImg may write one): not a
    folder of the source."""
    return folder.startswith(("/", "\\")) or (len(folder) > 1 and folder[1] == ":")


def _voc_text(data: bytes, where: str) -> str:
    """A VOC file's XML text without its declaration; ParseError if it is not text."""
    return _DECLARATION.sub("", _xml_text(data, where), count=1)


def _tree_voc(text: str, where: str) -> _VocRead:
    """Any VOC file, through an element tree; ParseError for what is not a VOC annotation."""
    # Without a DTD no entity can be declared, so there is nothing to defuse: the C parser
    # then builds the same tree ~3x faster than defusedxml's pure-Python one.
    parse = fromstring if "<!DOCTYPE" in text else ET.fromstring
    try:
        root = parse(text)
    except (ET.ParseError, DefusedXmlException, ValueError, RecursionError) as exc:
        raise ParseError(
            Reason.PARSE_INVALID_XML, f"{where}: {type(exc).__name__}: {exc}"
        ) from None
    if root.tag != "annotation":
        raise ParseError(
            Reason.PARSE_INVALID_XML, f"{where}: root element is <{root.tag}>, not <annotation>"
        )
    top = _first_children(root)
    size = top.get("size")
    size_of = _first_children(size) if size is not None else {}
    labels, corners, attributes = [], [], []
    for obj in root.iterfind("object"):
        children = _first_children(obj)
        labels.append(_text(children.get("name")))
        corners.append(_box(obj, children))
        attributes.append(_object_attributes(obj, children))
    clean = None not in labels and not any(isinstance(c, str) for c in corners)
    width, height = _text(size_of.get("width")), _text(size_of.get("height"))
    filename, folder = _text(top.get("filename")), _text(top.get("folder"))
    return filename, width, height, labels, corners, attributes, clean, folder


def _first_children(element: ET.Element) -> dict[str, ET.Element]:
    """The first child of each tag: what ``element.find(tag)`` gives, for every tag at once."""
    children: dict[str, ET.Element] = {}
    for child in element:
        children.setdefault(child.tag, child)
    return children


def _object_attributes(obj: ET.Element, children: dict[str, ET.Element] | None = None):
    """The attributes of an ``<object>`` (``children``: its :func:`_first_children`)."""
    children = _first_children(obj) if children is None else children
    attributes: dict[str, str] = {}
    for key in _PLAIN_ATTRIBUTES:
        value = _text(children.get(key))
        if value is not None:
            attributes[key] = value
    holder = children.get("attributes")
    if holder is not None:
        for attribute in holder.findall("attribute"):
            name = _text(attribute.find("name"))
            if name:
                attributes[name] = _text(attribute.find("value")) or ""
    return attributes


def _box(obj: ET.Element, children: dict[str, ET.Element] | None = None):
    """VOC 1-based inclusive pixels -> 0-based ``x0, y0, x1, y1``; a string says what is wrong."""
    bndbox = (_first_children(obj) if children is None else children).get("bndbox")
    if bndbox is None:
        return "no <bndbox>"
    corners = _first_children(bndbox)
    values = []
    for tag in _COORDS:
        text = _text(corners.get(tag))
        if text is None:
            return f"<bndbox> has no <{tag}>"
        try:
            values.append(float(text))
        except ValueError:
            return f"<{tag}> {text[:40]!r} is not a number"
    xmin, ymin, xmax, ymax = values
    return xmin - 1.0, ymin - 1.0, xmax, ymax


# --- the plain layout, without a tree ----------------------------------------------------------
# Most VOC files are written by the same few tools in one layout. _plain_voc reads exactly that
# layout with regular expressions and gives what the tree walk (_tree_voc) gives; any other
# file (comments, XML attributes, entities other than &amp; in the filename, other tags or
# another order, CDATA, ...) is left to the tree. Text is what an XML parser keeps verbatim: no
# markup, no '&', no carriage return (a parser turns CR LF into LF) and no character XML
# forbids, so the captured text is the element's text.
_S = r"[ \t\r\n]*"  # white space between elements (never a text the tree reads)
_CHAR = r"[^<&\x00-\x08\x0b\x0c\x0e-\x1f\r\ud800-\udfff\ufffe\uffff]"  # one character of text
_T = rf"{_CHAR}*"
_FILE_T = rf"(?:{_CHAR}|&amp;)*"  # a filename may hold "?w=4&amp;h=3"
_N = r"[ \t\n]*(-?[0-9]{1,15}(?:\.[0-9]{1,15})?)[ \t\n]*"
_PLAIN_HEAD = re.compile(
    rf"{_S}<annotation>{_S}(?:<folder>({_T})</folder>{_S})?<filename>({_FILE_T})</filename>{_S}"
    rf"(?:<path>{_T}</path>{_S})?"
    rf"(?:<source>{_S}(?:<database>{_T}</database>{_S})?(?:<annotation>{_T}</annotation>{_S})?"
    rf"(?:<image>{_T}</image>{_S})?</source>{_S})?"
    rf"<size>{_S}<width>({_T})</width>{_S}<height>({_T})</height>{_S}"
    rf"(?:<depth>{_T}</depth>{_S})?</size>{_S}(?:<segmented>{_T}</segmented>{_S})?"
)
_PLAIN_OBJECT = re.compile(
    rf"<object>{_S}<name>({_T})</name>{_S}(?:<pose>({_T})</pose>{_S})?"
    rf"(?:<truncated>({_T})</truncated>{_S})?(?:<difficult>({_T})</difficult>{_S})?"
    rf"(?:<occluded>({_T})</occluded>{_S})?"
    rf"<bndbox>{_S}<xmin>{_N}</xmin>{_S}<ymin>{_N}</ymin>{_S}<xmax>{_N}</xmax>{_S}"
    rf"<ymax>{_N}</ymax>{_S}</bndbox>{_S}"
    rf"(?:<attributes>{_S}((?:<attribute>{_S}<name>{_T}</name>{_S}<value>{_T}</value>{_S}"
    rf"</attribute>{_S})*)</attributes>{_S})?</object>{_S}"
)
_ATTRIBUTE_PAIR = re.compile(rf"<attribute>{_S}<name>({_T})</name>{_S}<value>({_T})</value>")
_PLAIN_END = re.compile(rf"</annotation>{_S}")


def _plain_voc(text: str) -> _VocRead | None:
    """What :func:`_tree_voc` reads from a file in the plain layout, at a fraction of its
    cost (every object has a name and a numeric box); None for any other file."""
    head = _PLAIN_HEAD.match(text)
    if head is None or "]]>" in text:
        return None
    labels: list[str] = []
    corners: list[tuple[float, float, float, float]] = []
    attributes: list[dict[str, str]] = []
    pos = head.end()
    while (obj := _PLAIN_OBJECT.match(text, pos)) is not None:
        name, pose, truncated, difficult, occluded, xmin, ymin, xmax, ymax, extra = obj.groups()
        labels.append(name.strip())
        corners.append((float(xmin) - 1.0, float(ymin) - 1.0, float(xmax), float(ymax)))
        found = {}  # _PLAIN_ATTRIBUTES in their order, as the tree walk finds them
        if pose is not None:
            found["pose"] = pose.strip()
        if truncated is not None:
            found["truncated"] = truncated.strip()
        if difficult is not None:
            found["difficult"] = difficult.strip()
        if occluded is not None:
            found["occluded"] = occluded.strip()
        if extra:
            for key, value in _ATTRIBUTE_PAIR.findall(extra):
                if key.strip():
                    found[key.strip()] = value.strip()
        attributes.append(found)
        pos = obj.end()
    if _PLAIN_END.fullmatch(text, pos) is None:
        return None
    folder, filename, width, height = head.groups()
    filename = filename.replace("&amp;", "&").strip()
    folder = folder.strip() if folder is not None else None
    return filename, width.strip(), height.strip(), labels, corners, attributes, True, folder


@functools.lru_cache(maxsize=256)  # one per folder of annotation files, not one per file
def _image_places(root: str, own: str, folder: str | None) -> Candidates:
    """Where the image of a VOC file in root-relative folder ``own`` is looked for
    (docs/FORMATS.md "voc"): ``JPEGImages/`` beside ``own`` (``Annotations/``), ``JPEGImages/``
    at the root, the ``<folder>`` element's folder beside ``own`` and at the root, ``own``
    itself, the root; an annotation-only source's refs hang from the root's ``JPEGImages/``
    (the old default)."""
    parent = posixpath.dirname(own) if own else None  # the folder Annotations/ is in
    named = folder.replace("\\", "/") if folder and not _absolute(folder) else None
    folders = [posixpath.join(parent, "JPEGImages")] if parent is not None else []
    folders.append("JPEGImages")
    if named:
        folders += [posixpath.join(parent, named)] if parent is not None else []
        folders.append(named)
    folders += [own, ""]
    return candidates(folders, posixpath.join(root, "JPEGImages"))


class VocReader(FormatReader):
    name = "voc"
    read_ahead = True

    def detect(self, source: Source) -> bool:
        for path in source.walk((".xml",))[:_DETECT_PEEK]:
            try:
                with source.open(path) as f:  # decompressed, for a .xml.gz
                    head = f.read(4096)
            except (OSError, ParseError):
                continue
            codec = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
            if _VOC_ROOT.search(head.decode(codec, errors="replace")):
                return True
        return False

    def files(self, source: Source, context: object) -> list[str]:
        return source.walk((".xml",))

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        where = source.relpath(path)
        text = _voc_text(source.read_bytes(path), where)
        read = _plain_voc(text) or _tree_voc(text, where)
        filename, width_text, height_text, labels, corners, attributes, clean, folder = read
        image_id = posixpath.splitext(posixpath.basename(plain_name(path)))[0]
        places = _image_places(source.root, folder_of(source, path), folder)
        try:
            image_uri = resolve(source, filename or f"{image_id}.jpg", where, places)
        except ParseError as exc:
            if not labels:  # nothing to reject box by box, but the file must not vanish
                return ReadResult(record_errors=[exc])
            image_error: ParseError | None = exc
            image_uri, width, height = "", 0, 0
        else:
            if not labels:
                return ReadResult(images=1)
            width, height, image_error = source.size_or_error(
                image_dimension(width_text), image_dimension(height_text), image_uri, where
            )
        if clean and image_error is None:  # the common case: every box kept
            image = (image_id, image_uri, width, height)
            xyxy = packed("d", list(chain.from_iterable(corners)))
            return ReadResult(_VocBoxes(image, None, labels, attributes, (xyxy,)), images=1)

        bad: list[BoxReject] = []
        for index, (label, box) in enumerate(zip(labels, corners)):
            if label is None or isinstance(box, str):
                detail = f"{where}: {'no <name>' if label is None else box}"
                bad.append(BoxReject(image_id, index, Reason.PARSE_MALFORMED_BOX, detail))
        n = len(labels)
        if image_error is not None:
            return ReadResult(rejects=reject_image(image_id, bad, n, image_error), images=1)
        kept = kept_indexes(bad, n)
        boxes = _VocBoxes(
            (image_id, image_uri, width, height),
            kept,
            [labels[i] for i in kept],  # type: ignore[misc]
            [attributes[i] for i in kept],
            (packed("d", list(chain.from_iterable(corners[i] for i in kept))),),  # type: ignore[misc]
        )
        return ReadResult(boxes, rejects=bad, images=1)


class _VocBoxes(ImageBoxes):
    """The kept objects of one VOC file; geometry: ``(corners,)``, the 0-based ``x0, y0, x1,
    y1`` of each box."""

    __slots__ = ()

    @classmethod
    def convert(cls, geometry: list[tuple], columns: dict) -> dict[str, object]:
        (corners,) = geometry or ((),)
        xyxy = flat(corners).reshape(-1, 4)
        return {"x0": xyxy[:, 0], "y0": xyxy[:, 1], "x1": xyxy[:, 2], "y1": xyxy[:, 3]}
