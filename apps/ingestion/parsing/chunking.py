"""Elements -> chunks: unstructured's title-based chunking, then ChunkDrafts that keep each
chunk's page, its section title and, for tables, the table itself.

Two chunking choices differ from unstructured's defaults, for precise citations:
``combine_text_under_n_chars=0`` (unstructured: ``max_characters``, which packs several
whole sections into one chunk whose section title then names only the first of them): one
section per chunk, long sections split at ``new_after_n_chars``/``max_characters``; a chunk
holding nothing but headings (a heading right before a table, which unstructured always
isolates) is prefixed to the next chunk instead of standing alone.
``multipage_sections=False`` starts a new chunk at every page break, so a chunk's page
number is the page its text is on (a chunk spanning pages would get its first page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The production chunking (the worker passes its settings, CHUNK_* in rag_platform.conf.ingestion,
# whose defaults are these): a chunk ends after 900 characters at the next element, never
# exceeds 1,200, and a split long section repeats 400 characters of its previous chunk.
CHUNK_MAX_CHARACTERS = 1200
CHUNK_NEW_AFTER_CHARACTERS = 900
CHUNK_OVERLAP_CHARACTERS = 400


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    page_number: int | None  # 1-based (page, slide or sheet), None when the format has none
    section_title: str  # nearest preceding Title element text, "" if none
    ordinal: int  # 0-based position in the document
    metadata: dict = field(default_factory=dict)  # {"table_html": ..., "ocr": True, ...}


def chunk_elements(
    elements: list[Any],
    *,
    max_characters: int,
    new_after_n_chars: int,
    overlap: int,
    combine_text_under_n_chars: int,
    multipage_sections: bool,
) -> list[ChunkDraft]:
    from unstructured.chunking.title import chunk_by_title

    chunks = chunk_by_title(
        elements,
        max_characters=max_characters,
        new_after_n_chars=new_after_n_chars,
        overlap=overlap,
        combine_text_under_n_chars=combine_text_under_n_chars,
        multipage_sections=multipage_sections,
        include_orig_elements=True,
    )
    return _to_drafts(chunks, max_characters)


def _is_title(element: Any) -> bool:
    return getattr(element, "category", "") == "Title"


def _to_drafts(chunks: list[Any], max_characters: int) -> list[ChunkDraft]:
    """ChunkDrafts with page numbers and section titles; heading-only chunks join the next."""
    drafts: list[ChunkDraft] = []
    current_title = ""
    pending: tuple[str, str, int | None] | None = None  # a heading-only chunk: text, title, page
    for chunk in chunks:
        text = (chunk.text or "").strip()
        origin = chunk.metadata.orig_elements or []
        if origin and _is_title(origin[0]):
            section = origin[0].text.strip()
        else:
            section = current_title
        titles = [el.text.strip() for el in origin if _is_title(el)]
        if titles:
            current_title = titles[-1]
        page = chunk.metadata.page_number  # chunk_by_title keeps the first page of the chunk
        if page is None and origin:
            page = next((el.metadata.page_number for el in origin if el.metadata.page_number), None)
        page = int(page) if page is not None else None
        if not text:
            continue
        metadata: dict = {}
        table_html = getattr(chunk.metadata, "text_as_html", None)
        if table_html and any(getattr(el, "category", "") == "Table" for el in origin or [chunk]):
            metadata["table_html"] = table_html
            text = _table_as_rows(table_html) or text  # rows and columns, not a soup of cells
        if any(getattr(el.metadata, "ocr", False) for el in origin):
            metadata["ocr"] = True
        sheet = getattr(chunk.metadata, "page_name", None)
        if sheet:
            metadata["sheet"] = sheet
        if pending is not None:
            p_text, p_section, p_page = pending
            pending = None
            if len(p_text) + 2 + len(text) <= max_characters and (p_page == page or p_page is None):
                text, section = f"{p_text}\n\n{text}", p_section
            else:
                drafts.append(ChunkDraft(p_text, p_page, p_section, len(drafts)))
        if origin and all(_is_title(el) for el in origin):
            pending = (text, section, page)
            continue
        drafts.append(ChunkDraft(text, page, section, len(drafts), metadata))
    if pending is not None:
        p_text, p_section, p_page = pending
        drafts.append(ChunkDraft(p_text, p_page, p_section, len(drafts)))
    return drafts


def _table_as_rows(table_html: str) -> str:
    """A table as text a reader (and the embedding model) can follow: one row per line,
    cells separated by " | "."""
    try:
        from lxml import html as lxml_html

        root = lxml_html.fromstring(table_html)
    except Exception:  # noqa: BLE001
        return ""
    rows = []
    for tr in root.iter("tr"):
        cells = [" ".join(td.text_content().split()) for td in tr if td.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
