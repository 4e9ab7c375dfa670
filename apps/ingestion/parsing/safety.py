"""Checks that run before any parser sees a file: bombs, traversal, hostile XML, cut-off PDFs.

Each check raises the :class:`ParseError` a corpus admin reads (``code="hostile"`` for an
attack, ``"corrupt"`` for a broken file) or returns quietly. The parse child's memory and
CPU limits (apps.ingestion.sandbox) are the backstop for whatever a check cannot foresee.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from apps.ingestion.parsing import messages
from apps.ingestion.parsing.tuning import ParseTuning, current

_XML_FEED_BYTES = 256 * 1024


def check_zip_safe(zf: zipfile.ZipFile, declared_name: str, *, archive: bool,
                   limits: ParseTuning | None = None) -> None:
    """Refuse zip bombs (by declared sizes and ratio, within ``limits``, default the current
    tuning; the child's memory limit is the backstop for lying headers), path traversal names,
    and, inside office documents, XML with a DOCTYPE or entity declarations (external entities,
    billion laughs): no genuine OOXML/ODF part has one."""
    limits = limits or current()
    infos = zf.infolist()
    if len(infos) > limits.zip_max_members:
        raise messages.too_many_members(declared_name, len(infos), limits.zip_max_members)
    total = 0
    for info in infos:
        name = info.filename.replace("\\", "/")
        if archive and (name.startswith("/") or ".." in name.split("/") or re.match(r"^[A-Za-z]:", name)):
            raise messages.unsafe_member_path(declared_name, info.filename)
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > limits.zip_max_ratio and info.file_size > 10 * 1024 * 1024:
            raise messages.zip_bomb_member(declared_name, info.filename, info.file_size // max(info.compress_size, 1),
                                           info.file_size)
    if total > limits.zip_max_total_bytes:
        raise messages.zip_bomb_total(declared_name, total, limits.zip_max_total_bytes)
    if archive:
        return
    for info in infos:
        if info.filename.lower().endswith((".xml", ".rels")):
            with zf.open(info) as member:
                check_xml_part(member, declared_name, info.filename)


def check_xml_part(stream, declared_name: str, part: str) -> None:
    """Read one XML part to its end with defusedxml, which refuses a DOCTYPE, entity
    declarations and external references wherever they are: after a padded prologue, in
    UTF-16, in any encoding expat knows. A part that is not well-formed XML raises
    ``xml.etree.ElementTree.ParseError``: the caller reports the document damaged (the office
    parsers would fail on it too)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    parser = DefusedXMLParser(target=_NoTarget(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        while block := stream.read(_XML_FEED_BYTES):
            parser.feed(block)
        parser.close()
    except DefusedXmlException as exc:
        raise messages.xml_declarations(declared_name, part) from exc


class _NoTarget:
    """An XMLParser target without callbacks: expat checks the whole part at C speed and
    builds nothing (defusedxml's handlers for DTDs and entities stay in place)."""

    def close(self) -> None:
        return None


def check_pdf_complete(path: Path, declared_name: str) -> None:
    """A PDF ends with %%EOF (readers accept it within the last 1024 bytes). A reader would
    silently recover what it can from a truncated file: refuse instead of indexing half a
    document."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 2048))
        tail = fh.read()
    if b"%%EOF" not in tail:
        raise messages.pdf_incomplete(declared_name)


def check_image_size(path: Path, declared_name: str) -> None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:
        raise messages.pixel_bomb(declared_name, str(exc)) from exc
    except Exception as exc:  # noqa: BLE001
        raise messages.image_unreadable(declared_name) from exc
    max_pixels = current().image_max_pixels
    if width * height > max_pixels:
        raise messages.image_too_large(declared_name, width, height, max_pixels)
