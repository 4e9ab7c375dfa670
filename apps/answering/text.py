"""Plain-text rendering of an answer, for the command line."""

from apps.answering.services import AnswerResult


def answer_as_text(result: AnswerResult) -> str:
    lines = []
    if result.error:
        lines.append(f"  ERROR: {result.error}")
    label = {"verified": "Verified answer", "quotation": "Quotation (the model's answer was not verified)",
             "not_stated": "Not stated in your documents"}.get(result.answer_kind)
    if result.answer_kind == "not_stated":
        lines.append(f"  {result.answer}")
    elif label and result.answer:
        lines.append(f"  {label}: {result.answer}")
    elif not result.error:
        lines.append(f"  Answer: {result.answer}")
    if result.reason and result.answer_kind in ("quotation", "not_stated"):
        lines.append(f"    (why: {result.reason})")
    for c in result.citations:
        page = f", page {c.source.page_number}" if c.source.page_number else ""
        mark = "cited" if c.cited else "source"
        lines.append(f"    [{c.number}] ({mark}, score {c.source.score}) {c.source.document_title}{page}: "
                     f"{c.source.text[:100].replace(chr(10), ' ')}…")
    lines.append(f"  Audit event #{result.audit_sequence} ({result.outcome})")
    return "\n".join(lines)
