"""A text PDF page's lines and boxes through pdfium, with the fonts they are set in.

Lines: pdfium's text rectangles (runs of one text object, so of one font and size) merged
into lines; each line counts its characters per style (effective size, bold). Boxes: lines
grouped as pdfminer's layout analysis groups them (a box ends where the gap to the next line
exceeds LINE_MARGIN x a line's height, as ``LAParams.line_margin``), which is what
unstructured's ``fast`` strategy classifies. What the boxes become is
apps.ingestion.parsing.pdf_elements.
"""

from __future__ import annotations

import ctypes
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LINE_MARGIN = 0.5  # pdfminer's LAParams.line_margin: a gap over this x line height ends a box
FORCE_BOLD = 1 << 18  # PDF font descriptor flag 19, ForceBold
BOLD_WEIGHT = 600
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)

Style = tuple[float, bool]  # (effective font size in points, rounded to 0.5; bold)


@dataclass(slots=True)
class Line:
    text: str
    left: float
    bottom: float
    right: float
    top: float
    styles: Counter = field(default_factory=Counter)  # Style -> characters set in it

    @property
    def style(self) -> Style | None:
        """The style most of the line's characters are set in (None: pdfium gave no font)."""
        return self.styles.most_common(1)[0][0] if self.styles else None


@dataclass(slots=True)
class Box:
    text: str
    left: float
    bottom: float
    right: float
    top: float
    height: float  # of its last line
    lines: int = 1
    heading: bool = False  # every line of it is EMPHASIS or LARGER (pdf_elements.Fonts.line_kind)
    larger: bool = False  # every line of it is LARGER
    style: Style | None = None  # its first line's


def page_lines(textpage: Any) -> list[Line]:
    """pdfium's text rectangles (runs of characters on one line, in content order) merged
    into lines, each with the vertical extent pdfminer gives it and its characters' styles."""
    lines: list[Line] = []
    for index in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(index)
        text = textpage.get_text_bounded(left, bottom, right, top).replace("\x02", "-")
        if not text.strip():
            continue
        bottom, top, style = _run_extent_and_style(textpage, left, bottom, top)
        chars = len(text) - text.count(" ")
        if lines and _same_line(lines[-1], bottom, top, left):
            line = lines[-1]
            line.text = f"{line.text} {text}"
            line.left, line.bottom = min(line.left, left), min(line.bottom, bottom)
            line.right, line.top = max(line.right, right), max(line.top, top)
        else:
            line = Line(text, left, bottom, right, top)
            lines.append(line)
        if style is not None:
            line.styles[style] += chars
    return lines


BODY, EMPHASIS, LARGER = 0, 1, 2  # a line's kind: body text, bold or capitals, larger than the body


def page_boxes(lines: list[Line], kinds: list[int]) -> list[Box]:
    """Consecutive lines grouped into boxes: vertically within LINE_MARGIN x the line height
    and overlapping horizontally, as pdfminer groups them, except that a line set LARGER
    than the body and one that is not never share a box (a bold line may be a bold sentence
    of its paragraph). A box is a heading when all its lines are EMPHASIS or LARGER."""
    boxes: list[Box] = []
    last = BODY
    for line, kind in zip(lines, kinds, strict=True):
        box = boxes[-1] if boxes else None
        if box is not None and (kind == LARGER) == (last == LARGER) and _same_box(box, line):
            box.text = f"{box.text}\n{line.text}"
            box.left, box.right = min(box.left, line.left), max(box.right, line.right)
            box.bottom, box.height, box.lines = line.bottom, line.top - line.bottom, box.lines + 1
            box.heading = box.heading and kind != BODY
            box.larger = box.larger and kind == LARGER
        else:
            boxes.append(Box(line.text, line.left, line.bottom, line.right, line.top, line.top - line.bottom,
                             heading=kind != BODY, larger=kind == LARGER, style=line.style))
        last = kind
    return boxes


def _run_extent_and_style(textpage: Any, left: float, bottom: float, top: float) -> tuple[float, float, Style | None]:
    """The vertical extent pdfminer gives a run of text: from the baseline plus the font's
    descent (about a fifth of the size below it) up by the font size. pdfium's rectangle hugs
    the glyphs instead (a line without ascenders or descenders is short), which would make the
    gaps between lines, and so the grouping into boxes, depend on the letters in them.
    The size is the effective one (the font size scaled by the text and page matrices: a PDF
    may set ``1 Tf`` and scale the text matrix instead); the run's style is its first
    character's (a run is one text object, so one font and size)."""
    import pypdfium2.raw as pdfium_c

    char = textpage.get_index(left + 0.5, (bottom + top) / 2, 1.0, 1.0)
    if char is None or char < 0:
        return bottom, top, None
    raw = textpage.raw
    size = pdfium_c.FPDFText_GetFontSize(raw, char)
    matrix = pdfium_c.FS_MATRIX()
    if size > 0 and pdfium_c.FPDFText_GetMatrix(raw, char, matrix):
        size *= math.sqrt(abs(matrix.a * matrix.d - matrix.b * matrix.c)) or 1.0
    x, y = ctypes.c_double(), ctypes.c_double()
    if size <= 0 or not pdfium_c.FPDFText_GetCharOrigin(raw, char, ctypes.byref(x), ctypes.byref(y)):
        return bottom, top, None
    low = y.value - 0.2 * size
    return low, low + size, (round(size * 2) / 2, _is_bold(raw, char))


def _is_bold(raw: Any, char: int) -> bool:
    """Bold by the font's weight, its ForceBold flag or its name (the standard 14 fonts,
    e.g. Helvetica-Bold, carry no weight)."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDFText_GetFontWeight(raw, char) >= BOLD_WEIGHT:
        return True
    flags = ctypes.c_int()
    name = ctypes.create_string_buffer(128)
    length = pdfium_c.FPDFText_GetFontInfo(raw, char, name, len(name), ctypes.byref(flags))
    if flags.value & FORCE_BOLD:
        return True
    if length > len(name):
        name = ctypes.create_string_buffer(length)
        pdfium_c.FPDFText_GetFontInfo(raw, char, name, len(name), ctypes.byref(flags))
    return bool(_BOLD_NAME.search(name.value.decode("latin-1").rpartition("+")[2]))


def _same_line(line: Line, bottom: float, top: float, left: float) -> bool:
    height = max(line.top - line.bottom, top - bottom, 1e-6)
    overlap = min(line.top, top) - max(line.bottom, bottom)
    return overlap > 0.5 * min(line.top - line.bottom, top - bottom) and left - line.right < 2 * height


def _same_box(box: Box, line: Line) -> bool:
    gap = box.bottom - line.top
    height = max(box.height, line.top - line.bottom)
    return -0.5 * height < gap <= LINE_MARGIN * height and min(box.right, line.right) > max(box.left, line.left)
