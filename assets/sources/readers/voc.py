"""Pascal VOC reader: one ``<annotation>`` XML file per image (docs/FORMATS.md, section voc).

XML is parsed with defusedxml: entity declarations and external references are refused, so a
hostile file is data only and becomes ``parse_invalid_xml``.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    BoxColumns,
    BoxReject,
    FormatReader,
    ParseError,
    PerImageBulk,
    ReadResult,
    Source,
    decode_text,
    image_dimension,
    plain_utf8,
    reader_table,
)

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


def parse_voc_xml(data: bytes, where: str) -> ET.Element:
    """The ``<annotation>`` root of a VOC file; ParseError for anything else."""
    text = _DECLARATION.sub("", _xml_text(data, where), count=1)
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
    return root


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
# layout with regular expressions and gives what the tree walk in _VocBulk gives; any other
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
    rf"{_S}<annotation>{_S}(?:<folder>{_T}</folder>{_S})?<filename>({_FILE_T})</filename>{_S}"
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


def _plain_voc(text: str) -> tuple[str, str, str, list, list, list] | None:
    """``(filename, width, height, labels, corners, attributes)`` of a file in the plain layout
    (texts stripped, as :func:`_text` gives them), None for any other file."""
    head = _PLAIN_HEAD.match(text)
    if head is None or "]]>" in text:
        return None
    labels: list[str] = []
    corners: list[tuple[float, float, float, float]] = []
    attributes: list[dict[str, str]] = []
    pos = head.end()
    while (obj := _PLAIN_OBJECT.match(text, pos)) is not None:
        name, *plain, xmin, ymin, xmax, ymax, extra = obj.groups()
        labels.append(name.strip())
        corners.append((float(xmin) - 1.0, float(ymin) - 1.0, float(xmax), float(ymax)))
        found = {k: v.strip() for k, v in zip(_PLAIN_ATTRIBUTES, plain) if v is not None}
        for key, value in _ATTRIBUTE_PAIR.findall(extra or ""):
            if key.strip():
                found[key.strip()] = value.strip()
        attributes.append(found)
        pos = obj.end()
    if _PLAIN_END.fullmatch(text, pos) is None:
        return None
    filename, width, height = head.groups()
    return (
        filename.replace("&amp;", "&").strip(),
        width.strip(),
        height.strip(),
        labels,
        corners,
        attributes,
    )


class VocReader(FormatReader):
    name = "voc"

    def detect(self, source: Source) -> bool:
        for path in source.walk((".xml",))[:_DETECT_PEEK]:
            try:
                with source.fs.open(path, "rb") as f:
                    head = f.read(4096)
            except OSError:
                continue
            codec = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
            if _VOC_ROOT.search(head.decode(codec, errors="replace")):
                return True
        return False

    def files(self, source: Source, context: object) -> list[str]:
        return source.walk((".xml",))

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        where = source.relpath(path)
        root = parse_voc_xml(source.read_bytes(path), where)
        image_id = posixpath.splitext(posixpath.basename(path))[0]
        filename = _text(root.find("filename")) or f"{image_id}.jpg"
        objects = root.findall("object")

        image_error: ParseError | None = None
        image_uri = ""
        width = height = 0
        try:
            image_uri = source.image_uri(filename, base=posixpath.join(source.root, "JPEGImages"))
        except ParseError as exc:
            image_error = exc
        if image_error is None and objects:
            size = root.find("size")
            w = image_dimension(_text(size.find("width"))) if size is not None else None
            h = image_dimension(_text(size.find("height"))) if size is not None else None
            width, height, image_error = source.size_or_error(w, h, image_uri, where)

        if image_error is not None and not objects:
            # Nothing to reject box by box, but the file still must not vanish silently.
            return ReadResult(boxes=BoxColumns().table(), images=0, record_errors=[image_error])

        columns = BoxColumns()
        rejects: list[BoxReject] = []
        for index, obj in enumerate(objects):
            label = _text(obj.find("name"))
            box = _box(obj)
            if label is None:
                rejects.append(
                    BoxReject(image_id, index, Reason.PARSE_MALFORMED_BOX, f"{where}: no <name>")
                )
            elif isinstance(box, str):
                rejects.append(
                    BoxReject(image_id, index, Reason.PARSE_MALFORMED_BOX, f"{where}: {box}")
                )
            elif image_error is not None:
                rejects.append(BoxReject.of(image_id, index, image_error))
            else:
                columns.add(
                    image_id=image_id,
                    image_uri=image_uri,
                    width=width,
                    height=height,
                    box_index=index,
                    label=label,
                    xyxy=box,
                    attributes=_object_attributes(obj),
                )
        return ReadResult(boxes=columns, rejects=rejects, images=1)

    def bulk(self, source: Source, context: object) -> _VocBulk:
        return _VocBulk(source)


class _VocBulk(PerImageBulk):
    """VOC files in bulk: each file is parsed as :meth:`VocReader.read_file` does, but its
    boxes go to flat lists that become Arrow arrays once per source. Declined: a file with a
    bad box, no usable size or image path, a DOCTYPE, a BOM or another encoding."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.image_base = posixpath.join(source.root, "JPEGImages")
        self.corners: list[tuple[float, float, float, float]] = []

    def add(self, path: str) -> int:
        text = self._text(path)
        if text is None:
            return -1
        read = _plain_voc(text)
        if read is None:
            read = self._from_tree(text)
            if read is None:
                return -1
        filename, width_text, height_text, labels, corners, attributes = read
        image_id = posixpath.splitext(posixpath.basename(path))[0]
        try:
            image_uri = self.source.image_uri(filename or f"{image_id}.jpg", base=self.image_base)
        except ParseError:
            return -1
        width, height = image_dimension(width_text), image_dimension(height_text)
        if width is None or height is None:
            return -1  # read_file reads the image header (or rejects every box)
        self.corners.extend(corners)
        return self.take_image((image_id, image_uri, width, height), labels, attributes)

    def _text(self, path: str) -> str | None:
        """The file's XML without its declaration; None for what the bulk path declines."""
        try:
            text = plain_utf8(self.source.read_bytes(path))
        except ParseError:
            return None
        if text is None or not text.strip() or "<!DOCTYPE" in text:
            return None
        return _DECLARATION.sub("", text, count=1)

    @staticmethod
    def _from_tree(text: str) -> tuple[str, str | None, str | None, list, list, list] | None:
        """What :func:`_plain_voc` gives, for any layout: the tree walk; None to decline."""
        try:
            root = ET.fromstring(text)
        except (ET.ParseError, ValueError, RecursionError):
            return None
        if root.tag != "annotation":
            return None
        top = _first_children(root)
        size = top.get("size")
        size_of = _first_children(size) if size is not None else {}
        labels, corners, attributes = [], [], []
        for obj in root.iterfind("object"):
            children = _first_children(obj)
            label, box = _text(children.get("name")), _box(obj, children)
            if label is None or isinstance(box, str):
                return None
            labels.append(label)
            corners.append(box)
            attributes.append(_object_attributes(obj, children))
        filename = _text(top.get("filename")) or ""
        width, height = _text(size_of.get("width")), _text(size_of.get("height"))
        return filename, width, height, labels, corners, attributes

    def table(self) -> pa.Table:
        corners = np.array(self.corners, dtype=np.float64).reshape(-1, 4)
        return reader_table(
            {
                **self.image_columns(),
                "x0": corners[:, 0],
                "y0": corners[:, 1],
                "x1": corners[:, 2],
                "y1": corners[:, 3],
            }
        )
