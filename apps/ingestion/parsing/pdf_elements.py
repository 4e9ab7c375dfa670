"""A text PDF's boxes as unstructured elements, typed by the fonts pdfium reports.

unstructured's fast strategy types every text box with ``element_from_text``, which guesses
Title vs NarrativeText from the words alone (spaCy sentence splitting and part-of-speech
tags): most of a text PDF's parse (docs/benchmarks.md). A PDF states it in its fonts, as a
.docx states it in its styles; unstructured's docx partitioner takes Title from the heading
style and never guesses one for a body paragraph. So, for a document whose fonts mark
headings:

* the body style is the (size, bold) most of the document's characters are set in;
* a heading line is set (HEADING_SHARE of its characters) at least HEADING_SIZE_RATIO x the
  body size (LARGER), or bold where the body is not, or (as unstructured's cap-ratio rule)
  in capitals (EMPHASIS); a LARGER line never shares a box with another kind of line
  (apps.ingestion.parsing.pdf_text.page_boxes), and a box is a heading when all its lines
  are heading lines;
* each box gets element_from_text's cheap rules in its order (header and footer by
  position, bullets, e-mail address, US address), then a heading box of at most
  MAX_HEADING_LINES lines that is title-shaped (is_possible_title's checks without its word
  limit and spaCy sentence count; a bold sentence ending in a full stop is none) is a
  Title, a numbered line a ListItem, any other box NarrativeText (Text when it is mostly
  not letters), all constructed with unstructured's element classes. No spaCy runs.

A document whose fonts mark nothing (no line larger or bolder than the body) gets
unstructured's own guess for every box (``element_from_text``), as before.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from apps.ingestion.parsing.pdf_text import BODY, EMPHASIS, LARGER, Box, Line, Style, page_boxes

HEADING_SIZE_RATIO = 1.08  # 12 pt over an 11 pt body is a heading size; 11.5 over 11 is not
MAX_HEADING_LINES = 3
HEADING_SHARE = 0.95  # of a heading line's characters set in a heading style
HEADER_SHARE, FOOTER_SHARE = 0.07, 0.93  # element_from_text's header / footer positions


@dataclass(frozen=True)
class Fonts:
    """What a document's fonts say: its body style, and whether any line is set larger or
    bolder than it (if not, the fonts mark no headings and the words are classified)."""

    body: Style | None
    marked: bool
    heading_styles: tuple[Style, ...] = ()  # larger first, bold before regular: depth 0, 1, ...

    def line_kind(self, line: Line) -> int:
        """LARGER, EMPHASIS (bold, or in capitals) or BODY, by the style (nearly) all of the
        line is set in: a line that only starts with bold words ("For **bereavement**, you
        can use:") is body text."""
        if not self.marked or line.style is None:
            return BODY
        total = sum(line.styles.values())
        larger = sum(n for (size, _), n in line.styles.items() if size >= self.body[0] * HEADING_SIZE_RATIO)
        if larger >= HEADING_SHARE * total:
            return LARGER
        if self._set_as_heading(line) or (line.style[0] >= self.body[0] * 0.95 and _in_capitals(line.text)):
            return EMPHASIS
        return BODY

    def _set_as_heading(self, line: Line) -> bool:
        total = sum(line.styles.values())
        return total > 0 and sum(n for s, n in line.styles.items() if self._marks(s)) >= HEADING_SHARE * total

    def depth(self, style: Style | None) -> int | None:
        """A heading's level, as unstructured's docx partitioner gives Heading N (0: the largest)."""
        return self.heading_styles.index(style) if style in self.heading_styles else None

    def _marks(self, style: Style) -> bool:
        """Set larger than the body, or bold where the body is not (smaller print, captions
        and footnotes, is no heading)."""
        if self.body is None:
            return False
        (size, bold), (body_size, body_bold) = style, self.body
        return size >= body_size * HEADING_SIZE_RATIO or (bold and not body_bold and size >= body_size * 0.95)


def document_fonts(lines_per_page: list[list[Line]]) -> Fonts:
    """The body style (most characters) and the heading styles: those lines are set in
    (a bold word inside a body line marks nothing) that are larger or bolder than the body."""
    chars: Counter = Counter()
    for lines in lines_per_page:
        for line in lines:
            chars.update(line.styles)
    if not chars:
        return Fonts(None, False)
    probe = Fonts(chars.most_common(1)[0][0], True)
    found = {line.style for lines in lines_per_page for line in lines if probe._set_as_heading(line)}
    headings = sorted(found, key=lambda s: (-s[0], not s[1]))
    return Fonts(probe.body, bool(headings), tuple(headings))


def page_elements(lines: list[Line], extra: list[Box], number: int, size: tuple[float, float], fonts: Fonts) -> list[Any]:
    """One page's boxes (``extra``: filled form fields, which have no font) as elements with
    page number and coordinates, in unstructured's reading order (as partition_pdf sorts)."""
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.documents.elements import CoordinatesMetadata, ElementMetadata
    from unstructured.partition.utils.constants import SORT_MODE_BASIC, SORT_MODE_XY_CUT
    from unstructured.partition.utils.sorting import sort_page_elements

    width, height = size
    system = PixelSpace(width=width, height=height)
    boxes = [*page_boxes(lines, [fonts.line_kind(line) for line in lines]), *extra]
    elements = []
    for box in boxes:
        text = " ".join(box.text.split())
        if not text:
            continue
        points = ((box.left, height - box.top), (box.left, height - box.bottom),
                  (box.right, height - box.bottom), (box.right, height - box.top))
        element = _element(text, box, points, system, fonts.marked)
        depth = fonts.depth(box.style) if getattr(element, "category", "") == "Title" else None
        element.metadata = ElementMetadata(page_number=number, coordinates=CoordinatesMetadata(points=points, system=system),
                                           category_depth=depth)
        elements.append(element)
    return sort_page_elements(sort_page_elements(elements, SORT_MODE_BASIC), SORT_MODE_XY_CUT)


def _element(text: str, box: Box, points: tuple, system: Any, marked: bool) -> Any:
    from unstructured.cleaners.core import clean_bullets
    from unstructured.documents import elements as kinds
    from unstructured.partition.text import element_from_text
    from unstructured.partition.text_type import (
        is_bulleted_text,
        is_email_address,
        is_possible_numbered_list,
        is_us_city_state_zip,
        under_non_alpha_ratio,
    )

    if not marked:  # the fonts say nothing: unstructured's guess from the words
        return element_from_text(text, coordinates=points, coordinate_system=system)
    place = dict(coordinates=points, coordinate_system=system)
    share = sum(y for _, y in points) / len(points) / system.height
    if share < HEADER_SHARE:
        return kinds.Header(text=text, **place)
    if share > FOOTER_SHARE:
        return kinds.Footer(text=text, **place)
    if is_bulleted_text(text):
        return kinds.ListItem(text=clean_bullets(text), **place)
    if is_email_address(text):
        return kinds.EmailAddress(text=text)
    if is_us_city_state_zip(text):
        return kinds.Address(text=text, **place)
    if box.heading and box.lines <= MAX_HEADING_LINES and _title_shaped(text) and (box.larger or not text.endswith(".")):
        return kinds.Title(text=text, **place)
    if is_possible_numbered_list(text):
        return kinds.ListItem(text=text, **place)
    if text.isnumeric() or under_non_alpha_ratio(text):
        return kinds.Text(text=text, **place)
    return kinds.NarrativeText(text=text, **place)


def _title_shaped(text: str) -> bool:
    """is_possible_title's checks on the characters (not its 12-word limit, which a
    paper's title often exceeds, nor its spaCy sentence count)."""
    from unstructured.nlp.patterns import ENDS_IN_PUNCT_RE
    from unstructured.partition.text_type import under_non_alpha_ratio

    if text.isupper() and ENDS_IN_PUNCT_RE.search(text):
        return False
    return not (text.endswith(",") or text.isnumeric() or under_non_alpha_ratio(text))


def _in_capitals(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)
