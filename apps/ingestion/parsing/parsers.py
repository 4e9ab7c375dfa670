"""The parsers of the office, mail, image and text formats (PDF: apps.ingestion.parsing.pdf).

A parser takes ``(path, declared_name)`` and returns unstructured Elements (page numbers in
their metadata where the format has pages). It may raise :class:`ParseError` with its own
message; any other exception means the file is damaged and is reported as such by the
caller. Which format uses which parser is the table in apps.ingestion.parsing.formats.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from apps.ingestion.parsing.encoding import text_encoding

# unstructured's language detection only fills element metadata that this platform does not
# use; it is skipped for text formats (a large share of parsing a short text).
# OCR keeps its languages: tesseract needs them.
NO_DETECTION = [""]


def parse_docx(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.docx import partition_docx

    return partition_docx(filename=str(path), strategy="fast", infer_table_structure=True)


def parse_pptx(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.pptx import partition_pptx

    return partition_pptx(filename=str(path), infer_table_structure=True, include_slide_notes=True)


def parse_xlsx(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.xlsx import partition_xlsx

    return partition_xlsx(filename=str(path), infer_table_structure=True, find_subtable=False)


def parse_odt(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.odt import partition_odt

    from apps.ingestion.parsing.offline import pandoc_sandbox_kept

    pandoc_sandbox_kept()
    return partition_odt(filename=str(path), infer_table_structure=True)


def parse_rtf(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.rtf import partition_rtf

    from apps.ingestion.parsing.offline import pandoc_sandbox_kept

    pandoc_sandbox_kept()
    return partition_rtf(filename=str(path))


def parse_msg(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.msg import partition_msg

    return with_email_header(partition_msg(filename=str(path), process_attachments=False))


def parse_eml(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.email import partition_email

    return with_email_header(partition_email(filename=str(path), process_attachments=False))


def parse_image(path: Path, declared_name: str) -> list[Any]:
    from apps.ingestion.parsing.ocr import ocr_image_elements

    return ocr_image_elements(path, declared_name)


def parse_csv(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.csv import partition_csv

    return partition_csv(filename=str(path), encoding=text_encoding(path), infer_table_structure=True,
                         languages=NO_DETECTION)


# Collapsible blocks (<details><summary>Title</summary> ... </details>, as GitLab's and many
# other handbooks write them): unstructured's HTML partitioner drops everything inside a
# <details> element, tables and lists included, so the tags are unwrapped (the summary kept
# as its own line) before the Markdown is rendered. Nothing else of the text changes.
_SUMMARY_LINE = re.compile(r"(?im)^[ \t]*<summary\b[^>]*>(.*?)</summary>[ \t]*$")
_DETAILS_LINE = re.compile(r"(?im)^[ \t]*</?details\b[^>]*>[ \t]*$")


def unwrap_collapsible_blocks(text: str) -> str:
    text = _SUMMARY_LINE.sub(lambda m: "\n" + m.group(1).strip() + "\n", text)
    return _DETAILS_LINE.sub("\n", text)


def parse_markdown(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.md import partition_md

    text = path.read_bytes().decode(text_encoding(path))
    return partition_md(text=unwrap_collapsible_blocks(text), metadata_filename=str(path), languages=NO_DETECTION)


def parse_html(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.html import partition_html

    return partition_html(filename=str(path), encoding=text_encoding(path), languages=NO_DETECTION)


def parse_text(path: Path, declared_name: str) -> list[Any]:
    from unstructured.partition.text import partition_text

    return partition_text(filename=str(path), encoding=text_encoding(path), languages=NO_DETECTION)


def with_email_header(elements: list[Any]) -> list[Any]:
    """unstructured keeps an e-mail's subject, sender, recipients and date in element
    metadata only; put them in front as text (the subject as the section title), so a mail
    can be found by its subject or sender and its chunks say which mail they come from."""
    from unstructured.documents.elements import Text, Title

    elements = [el for el in elements if (el.text or "").strip()]
    if not elements:
        return elements
    meta = elements[0].metadata
    subject = (getattr(meta, "subject", None) or "").strip()
    header = []
    for label, value in (("From", getattr(meta, "sent_from", None)), ("To", getattr(meta, "sent_to", None)),
                         ("Date", getattr(meta, "last_modified", None))):
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value if v)
        if value:
            header.append(f"{label}: {value}")
    out: list[Any] = []
    if subject:
        out.append(Title(text=f"Subject: {subject}"))
    if header:
        out.append(Text(text="\n".join(header)))
    return out + elements
