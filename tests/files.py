"""Test documents built by code: every format, and hostile or broken files.

Each builder returns bytes. Nothing here is checked in as a binary blob.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "sample_corpus"


def docx_with_table() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Travel policy", level=1)
    document.add_paragraph("Staff book trains for journeys under four hours.")
    document.add_heading("Allowances", level=2)
    table = document.add_table(rows=3, cols=2)
    for r, (city, amount) in enumerate([("City", "Daily allowance"), ("Paris", "95 EUR"), ("Oslo", "120 EUR")]):
        table.cell(r, 0).text, table.cell(r, 1).text = city, amount
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def pptx() -> bytes:
    from pptx import Presentation

    deck = Presentation()
    for title, body in [("Quarterly review", "Revenue grew by eleven percent."), ("Risks", "The datacentre lease ends in March.")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def xlsx() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Budget"
    for row in [("Department", "Budget"), ("Radiology", 420000), ("Cardiology", 380000)]:
        sheet.append(row)
    second = book.create_sheet("Staff")
    for row in [("Role", "Headcount"), ("Nurse", 120), ("Surgeon", 14)]:
        second.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def csv() -> bytes:
    return b"supplier,contract_end,value\nAcme Cleaning,2027-03-31,48000\nNordic Catering,2026-12-31,125000\n"


def eml() -> bytes:
    message = EmailMessage()
    message["From"] = "ciso@hospital.example"
    message["To"] = "all-staff@hospital.example"
    message["Subject"] = "Phishing drill results"
    message["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    message.set_content("The phishing drill ended. Twelve percent of staff clicked the link.\n\nReport suspicious mail to the security desk.")
    return bytes(message)


def rtf() -> bytes:
    return (
        rb"{\rtf1\ansi\deff0 {\fonttbl {\f0 Times;}}"
        rb"{\pard\b Visitor badges\b0\par}"
        rb"{\pard Visitors return their badge at reception before leaving the building.\par}}"
    )


def odt() -> bytes:
    import pypandoc

    out = io.BytesIO()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "doc.odt"
        pypandoc.convert_text(
            "# Archive rules\n\nPatient records are archived after ten years.\n",
            "odt", format="md", outputfile=str(target),
        )
        out.write(target.read_bytes())
    return out.getvalue()


def _text_image(lines: list[str]):
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1700, 600), 255)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 44)
    except OSError:
        font = ImageFont.load_default(size=44)
    for i, line in enumerate(lines):
        draw.text((60, 60 + i * 80), line, fill=0, font=font)
    return image


def scanned_pdf() -> bytes:
    """A PDF whose only page is an image of text (no text layer)."""
    buf = io.BytesIO()
    _text_image(["Fire doors must stay closed at all times.", "Inspections happen every month."]).save(buf, "PDF", resolution=200)
    return buf.getvalue()


def png_scan() -> bytes:
    buf = io.BytesIO()
    _text_image(["Badge readers log every entry."]).save(buf, "PNG")
    return buf.getvalue()


def text_pdf() -> bytes:
    return (SAMPLES / "records-retention-schedule.pdf").read_bytes()


# -- hostile and broken ---------------------------------------------------------------------


def zip_bomb(expanded: int = 2 * 1024**3) -> bytes:
    """A zip whose one member declares ``expanded`` bytes of zeros (built without writing
    them: the deflate stream of zeros is made in blocks)."""
    buf = io.BytesIO()
    block = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.txt", "w", force_zip64=True) as member:
            for _ in range(expanded // len(block)):
                member.write(block)
    return buf.getvalue()


def zip_traversal() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "harmless")
        zf.writestr("../../etc/cron.d/evil.txt", "* * * * * root rm -rf /")
    return buf.getvalue()


def zip_of_documents() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("policies/leave.md", "# Leave\n\nStaff get 30 days of annual leave.\n")
        zf.writestr("policies/suppliers.csv", csv().decode())
        zf.writestr("__MACOSX/._leave.md", "junk")
    return buf.getvalue()


def pixel_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG that declares 10^10 pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _docx_with_document_xml(document_xml: bytes) -> bytes:
    base = zipfile.ZipFile(io.BytesIO(docx_with_table()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in base.infolist():
            data = document_xml if info.filename == "word/document.xml" else base.read(info.filename)
            zf.writestr(info.filename, data)
    return buf.getvalue()


def docx_xxe(target: str = "/etc/passwd") -> bytes:
    return _docx_with_document_xml(
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file://' + target.encode() + b'">]>\n'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body></w:document>"
    )


BILLION_LAUGHS_DTD = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]>"
)


def docx_billion_laughs() -> bytes:
    return _docx_with_document_xml(
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + BILLION_LAUGHS_DTD + b"\n"
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )


def billion_laughs_html() -> bytes:
    return b'<?xml version="1.0"?>\n' + BILLION_LAUGHS_DTD + b"\n<html><body><p>&lol9;</p></body></html>"


def encrypted_pdf() -> bytes:
    import pikepdf

    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(text_pdf())) as pdf:
        pdf.save(buf, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    return buf.getvalue()


def truncated_pdf() -> bytes:
    data = text_pdf()
    return data[: len(data) // 2]
