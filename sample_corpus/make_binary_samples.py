"""Regenerate the binary documents of the sample corpus (the .pdf and the .docx).

    .venv/bin/python sample_corpus/make_binary_samples.py

The output is byte-for-byte reproducible (no timestamps), so re-running the script on an
unchanged checkout leaves git clean:

* ``records-retention-schedule.pdf`` is written by hand with the standard library only: a
  two-page PDF 1.4 with a real text layer (standard Helvetica / Helvetica-Bold fonts, which
  every PDF reader has built in, WinAnsi encoding) and a correct cross-reference table. No PDF
  library in the environment can *write* text PDFs, and a hand-written file keeps the sample
  free of generator noise. ``check_pdf()`` re-reads it with pdfminer and asserts that each fact
  lands on the page it was written on.
* ``payments-approval-procedure.docx`` is written with python-docx (installed with
  unstructured's ``docx`` extra) using real Word heading styles, a bulleted list and a table;
  the zip entries are then re-packed with a fixed date so the file is reproducible.

The facts in these two documents appear in no other document of the sample corpus, so a
citation can be checked against ``questions.json``.
"""

from __future__ import annotations

import io
import textwrap
import zipfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
PDF_NAME = "records-retention-schedule.pdf"
DOCX_NAME = "payments-approval-procedure.docx"

# --------------------------------------------------------------------------------------------
# PDF: Records Retention Schedule (2 pages)
# --------------------------------------------------------------------------------------------

# Each page is a list of (kind, text); kind is "title", "heading" or "para".
PDF_PAGES: list[list[tuple[str, str]]] = [
    [
        ("title", "Records Retention Schedule"),
        (
            "para",
            "Northbridge Health & Finance, schedule RM-02, version 4.1. Owner: Records Manager. "
            "This schedule says how long each kind of record is kept and how it is destroyed "
            "at the end of its retention period.",
        ),
        ("heading", "Clinical records"),
        (
            "para",
            "Patient records are retained for 10 years after the last treatment. Records of "
            "patients who were under 18 at the time of treatment are retained until the "
            "patient's 28th birthday if that is later.",
        ),
        (
            "para",
            "Medical imaging studies such as X-ray and MRI images are retained for 8 years "
            "after the date of the examination.",
        ),
        ("heading", "Human resources records"),
        (
            "para",
            "Personnel files are retained for 6 years after the employee leaves Northbridge. "
            "Unsuccessful job applications are deleted 6 months after the position is filled.",
        ),
    ],
    [
        ("heading", "Financial records"),
        (
            "para",
            "Financial transaction records, including invoices, receipts and payment "
            "instructions, are retained for 7 years after the end of the financial year in "
            "which the transaction took place.",
        ),
        ("heading", "Backups"),
        (
            "para",
            "Backup tapes are overwritten after 35 days. A monthly backup is kept offline in the "
            "vault at the Harbour Road site for 13 months.",
        ),
        ("heading", "Secure destruction"),
        (
            "para",
            "Paper records are destroyed by cross-cut shredding to security level P-4 or "
            "higher. The Records Manager keeps a certificate of destruction for every batch.",
        ),
    ],
]

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
LEFT, TOP = 72, 770
WRAP = 82  # characters per line at 11 pt Helvetica fits the 451 pt text width


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252) encoding, with ( ) and \\ escaped."""
    raw = text.encode("cp1252")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + raw + b")"


def _page_content(blocks: list[tuple[str, str]]) -> bytes:
    ops: list[bytes] = [b"BT", f"{LEFT} {TOP} Td".encode()]
    previous = ""
    for kind, text in blocks:
        if kind == "title":
            font, size, leading, gap_before = b"/F2", 18, 22, 0
        elif kind == "heading":
            font, size, leading, gap_before = b"/F2", 13, 17, 14
        else:
            font, size, leading, gap_before = b"/F1", 11, 14, 6
        if previous == "title":
            gap_before = 16  # keep pdfminer from merging the title into the first paragraph
        if previous:
            ops.append(f"0 -{gap_before} Td".encode())
        lines = [text] if kind != "para" else textwrap.wrap(text, WRAP)
        ops.append(font + f" {size} Tf {leading} TL".encode())
        for line in lines:
            # `'` = move to the next line (by TL) and show the string
            ops.append(_pdf_string(line) + b" '")
        previous = kind
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def build_pdf(pages: list[list[tuple[str, str]]] = PDF_PAGES) -> bytes:
    """Serialise a minimal, valid PDF 1.4 with one content stream per page."""
    n_pages = len(pages)
    # object numbers: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, 5 info,
    # then per page: page object, content stream
    first_page_obj = 6
    page_ids = [first_page_obj + 2 * i for i in range(n_pages)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: (
            b"<< /Type /Pages /Kids ["
            + b" ".join(f"{pid} 0 R".encode() for pid in page_ids)
            + f"] /Count {n_pages} >>".encode()
        ),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: (
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
            b"/Encoding /WinAnsiEncoding >>"
        ),
        5: (
            b"<< /Title " + _pdf_string("Records Retention Schedule")
            + b" /Author " + _pdf_string("Northbridge Health & Finance")
            + b" /Producer " + _pdf_string("sample_corpus/make_binary_samples.py") + b" >>"
        ),
    }
    for pid, blocks in zip(page_ids, pages):
        content = _page_content(blocks)
        objects[pid] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] ".encode()
            + b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
            + f"/Contents {pid + 1} 0 R >>".encode()
        )
        objects[pid + 1] = (
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"endstream"
        )

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # binary comment marks the file as binary
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = out.tell()
        out.write(f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n")
    xref_at = out.tell()
    size = max(objects) + 1
    out.write(f"xref\n0 {size}\n".encode())
    out.write(b"0000000000 65535 f \n")  # each entry is exactly 20 bytes
    for num in range(1, size):
        out.write(f"{offsets[num]:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>\n".encode())
    out.write(f"startxref\n{xref_at}\n%%EOF\n".encode())
    return out.getvalue()


def check_pdf(path: Path) -> None:
    """Re-read the PDF with pdfminer (what unstructured's "fast" strategy uses)."""
    from pdfminer.high_level import extract_text

    for page_no, blocks in enumerate(PDF_PAGES, start=1):
        text = " ".join(extract_text(str(path), page_numbers=[page_no - 1]).split())
        for _kind, block in blocks:
            assert " ".join(block.split()) in text, (page_no, block, text)
    assert "Backup tapes" not in extract_text(str(path), page_numbers=[0])


# --------------------------------------------------------------------------------------------
# DOCX: Payments Approval Procedure
# --------------------------------------------------------------------------------------------

FIXED_DATE = datetime(2025, 1, 6, 9, 0, 0, tzinfo=timezone.utc)


def build_docx() -> bytes:
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.title = "Payments Approval Procedure"
    props.author = "Northbridge Health & Finance"
    props.last_modified_by = "sample_corpus/make_binary_samples.py"
    props.created = props.modified = FIXED_DATE
    props.revision = 1

    doc.add_heading("Payments Approval Procedure", level=0)
    doc.add_paragraph(
        "Northbridge Health & Finance, procedure FIN-03, version 2.4. Owner: Chief Financial "
        "Officer. Applies to every outgoing payment made from a Northbridge bank account."
    )

    doc.add_heading("Approval thresholds", level=1)
    doc.add_paragraph(
        "Payments above 10,000 EUR require two approvals: the requester's line manager and a "
        "budget holder of the paying department. Payments above 250,000 EUR additionally "
        "require the approval of the Chief Financial Officer."
    )
    table = doc.add_table(rows=1, cols=2)
    table.style = "Table Grid"
    header = table.rows[0].cells
    header[0].text, header[1].text = "Payment amount", "Approvals required"
    for amount, approvals in [
        ("Up to 10,000 EUR", "One approval (line manager)"),
        ("Above 10,000 EUR", "Two approvals (line manager and budget holder)"),
        ("Above 250,000 EUR", "Two approvals and the Chief Financial Officer"),
    ]:
        row = table.add_row().cells
        row[0].text, row[1].text = amount, approvals
    doc.add_paragraph(
        "Splitting one payment into several smaller payments to stay below a threshold is a "
        "disciplinary offence."
    )

    doc.add_heading("Supplier bank details", level=1)
    doc.add_paragraph(
        "A change to a supplier's bank details is verified by a call-back to a telephone "
        "number already on file, never to a number given in the change request. No payment "
        "is made to the new account until the call-back is recorded."
    )

    doc.add_heading("Urgent payments", level=1)
    for bullet in (
        "Same-day urgent payments must be submitted before 14:00 CET.",
        "The Treasury team confirms each urgent payment by e-mail.",
        "Urgent payments are reviewed by Internal Audit at the end of every quarter.",
    ):
        doc.add_paragraph(bullet, style="List Bullet")

    buf = io.BytesIO()
    doc.save(buf)
    return _repack_zip_deterministically(buf.getvalue())


def _repack_zip_deterministically(data: bytes) -> bytes:
    """python-docx stamps zip entries with the current time: re-pack with a fixed one."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 6, 9, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def check_docx(path: Path) -> None:
    from docx import Document

    doc = Document(str(path))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert headings == ["Approval thresholds", "Supplier bank details", "Urgent payments"], headings
    assert len(doc.tables) == 1


def main() -> None:
    pdf_path = HERE / PDF_NAME
    pdf_path.write_bytes(build_pdf())
    check_pdf(pdf_path)
    docx_path = HERE / DOCX_NAME
    docx_path.write_bytes(build_docx())
    check_docx(docx_path)
    for path in (pdf_path, docx_path):
        print(f"wrote {path.name} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
