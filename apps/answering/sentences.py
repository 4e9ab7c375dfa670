"""Sentences of a passage, and which of them can be evidence.

``split_sentences`` is the one splitter: the sentence vectors stored with each chunk
(apps.answering.evidence) are one per sentence it returns, so changing it invalidates them
(a migration clears them). Headings, navigation lines, link lists and template residue
(``{% page "..." %}``) are kept by the splitter, so the stored vectors stay aligned, but
``is_evidence`` rejects them: a page title on its own answers nothing.

Documents are data, never instructions: ``looks_like_instruction`` recognises a sentence
addressed to an assistant. It runs on ``clean_text``, so zero-width characters, bidirectional
controls and full-width or compatibility letters do not hide one. It is one layer; the
grounding check is the backstop (an injected instruction that changes the answer produces
text its cited passage does not support, which is not shown).
"""

from __future__ import annotations

import re

from apps.answering.textnorm import clean_text, measures, words

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9$])")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|ex|vs|no|dr|mr|mrs|ms|st|approx|incl|u\.s)|\b[A-Z])\.$", re.IGNORECASE)
_MIN_SENTENCE_CHARACTERS = 15


def sentence_spans(text: str) -> list[tuple[int, str]]:
    """(paragraph number, sentence) for every sentence of ``text``, in order. A paragraph is a
    line (unstructured separates elements with blank lines, list items are elements)."""
    spans: list[tuple[int, str]] = []
    for paragraph, line in enumerate(text.split("\n")):
        pieces: list[str] = []
        for piece in _SENTENCE_BREAK.split(line):
            if pieces and _ABBREVIATION.search(pieces[-1]):
                pieces[-1] = f"{pieces[-1]} {piece}"  # "(Ex. Clicked ...)" is one sentence
            else:
                pieces.append(piece)
        spans += [(paragraph, p.strip()) for p in pieces if len(p.strip()) >= _MIN_SENTENCE_CHARACTERS]
    return spans


def split_sentences(text: str) -> list[str]:
    return [sentence for _, sentence in sentence_spans(text)]


_TEMPLATE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_BARE_URL = re.compile(r"https?://\S+")
_ABOUT_THE_PAGE = re.compile(r"^(?:this|the following|on this) (?:page|document|section|guide|article|handbook)\b",
                             re.IGNORECASE)
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")


def readable(sentence: str) -> str:
    """The sentence as a person reads it: template tags gone, links as their text."""
    text = _TEMPLATE.sub(" ", clean_text(sentence))
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _LIST_MARK.sub("", text)
    return re.sub(r"\s+", " ", text).strip(" #*_>|")


_PIPE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_RULE_ROW = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")


def table_cells(line: str) -> list[str]:
    """The cells of a table row ("| a | b |" as written in Markdown, or "a | b" as ingestion
    renders a parsed table), or [] for any other line (and for a "|---|" rule)."""
    raw = clean_text(line).strip()
    if _RULE_ROW.match(raw) or not (_PIPE_ROW.match(raw) or " | " in raw):
        return []
    cells = [c.strip() for c in raw.strip("|").split("|")]
    return cells if sum(1 for c in cells if c) >= 2 else []


def is_evidence(sentence: str) -> bool:
    """A sentence that can state a fact: not a heading, a navigation line or markup. A table
    row is (read with its header: apps.answering.evidence)."""
    raw = clean_text(sentence).strip()
    if raw.startswith("#") or not raw:
        return False
    if table_cells(raw):
        return True
    text = readable(raw)
    tokens = words(text)
    if len(tokens) < 4 and not (len(tokens) >= 2 and measures(text)):
        return False
    link_text = sum(len(m.group(0)) for m in _MARKDOWN_LINK.finditer(raw)) + sum(
        len(m.group(0)) for m in _BARE_URL.finditer(raw))
    if link_text > 0.7 * len(raw):
        return False  # a list of links
    if not re.search(r"[.!?:;,)\]]$", text) and len(tokens) <= 12 and not measures(text):
        # a heading: "Combining paid parental leave with other leave"; a short line stating an
        # amount ("Up to £3,000 for bike and accessories") is a list item, not a heading.
        return False
    if _ABOUT_THE_PAGE.match(text):
        return False  # "This page outlines how to ...": about the document, not its content
    return True


# Sentences addressed to an assistant rather than to a human reader: prompt injection.
_INSTRUCTION_PATTERNS = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|instructions|prompt|sources?|rules|above|previous|context)\b"
    r"|\b(you are now|you must now|act as|pretend to be|system prompt|new instructions?)\b"
    r"|\b(reply|respond|answer|say|output|print)\b.{0,30}\b(only|exactly|just)\b.{0,30}\b(word|words|phrase|text|with)\b"
    r"|\b(assistant|language model|AI model|chatbot|LLM)\b.{0,40}\b(must|should|shall|will)\b",
    re.IGNORECASE,
)


def looks_like_instruction(sentence: str) -> bool:
    return bool(_INSTRUCTION_PATTERNS.search(clean_text(sentence)))
