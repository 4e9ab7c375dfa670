"""Test documents built by code: every format, and hostile or broken files.

Each builder returns bytes. Nothing here is checked in as a binary blob.
"""

from __future__ import annotations

import io
import re
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


# -- awkward PDFs: each opens in a PDF viewer -------------------------------------------------


def pdf_with_missing_info_object() -> bytes:
    """The sample PDF whose trailer names a document-information object that does not exist
    (seen in the wild; viewers ignore it)."""
    data = text_pdf()
    assert b"/Info 5 0 R" in data
    return data.replace(b"/Info 5 0 R", b"/Info 99 0 R", 1)  # same length: the xref still holds


def fax_scan_pdf() -> bytes:
    """A one-page scan whose only content is a bilevel image in CCITT group 4 (fax)
    compression, as office scanners write them: Pillow writes mode "1" PDFs that way."""
    buf = io.BytesIO()
    _text_image(["Fire doors must stay closed at all times.", "Inspections happen every month."]).convert("1").save(
        buf, "PDF", resolution=200)
    data = buf.getvalue()
    assert b"/CCITTFaxDecode" in data
    return data


def mixed_pdf() -> bytes:
    """Page 1 has a text layer, page 2 is a scanned image."""
    import pypdfium2 as pdfium

    text = pdfium.PdfDocument(text_pdf())
    scan = pdfium.PdfDocument(scanned_pdf())
    text.del_page(1)
    text.import_pages(scan)
    buf = io.BytesIO()
    text.save(buf)
    return buf.getvalue()


def encrypted_pdf_empty_user_password() -> bytes:
    """Encrypted (AES-256) with an owner password only: anyone may open and read it."""
    import pikepdf

    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(text_pdf())) as pdf:
        pdf.save(buf, encryption=pikepdf.Encryption(user="", owner="owner-secret"))
    return buf.getvalue()


def form_pdf(value: str = "Harbour Road archive, room 4") -> bytes:
    """The sample PDF with a filled text field (AcroForm widget) on page 1: the value lives
    in the annotation, not in the page's text."""
    import pikepdf

    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(text_pdf())) as pdf:
        field = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Tx,
            T=pikepdf.String("storage_location"), V=pikepdf.String(value),
            Rect=[72, 400, 400, 420], F=4, P=pdf.pages[0].obj,
        ))
        pdf.pages[0].obj.Annots = pdf.make_indirect(pikepdf.Array([field]))
        pdf.Root.AcroForm = pdf.make_indirect(pikepdf.Dictionary(Fields=[field], NeedAppearances=True))
        pdf.save(buf)
    return buf.getvalue()


RIGHT_TO_LEFT_LINES = ("מדיניות שמירת רשומות", "התיקים נשמרים במשך עשר שנים")


def right_to_left_pdf(lines: tuple[str, ...] = RIGHT_TO_LEFT_LINES) -> bytes:
    """Hebrew text with an embedded TrueType font (DejaVu Sans, shipped with matplotlib),
    written with pdfium's own page-object API. Like the PDFs word processors write, the
    glyphs of each line are laid out in visual order (the line's last letter leftmost), so
    the page reads correctly from right to left."""
    import ctypes

    import matplotlib
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    font_data = font_path.read_bytes()
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(595, 842)
    buffer = (ctypes.c_uint8 * len(font_data)).from_buffer_copy(font_data)
    font = pdfium_c.FPDFText_LoadFont(pdf.raw, buffer, len(font_data), pdfium_c.FPDF_FONT_TRUETYPE, True)
    for i, line in enumerate(lines):
        obj = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, 14.0)
        encoded = (line[::-1] + "\0").encode("utf-16-le")  # visual order
        pdfium_c.FPDFText_SetText(obj, ctypes.cast(ctypes.create_string_buffer(encoded, len(encoded)),
                                                   ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
        pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 72, 760 - i * 40)
        pdfium_c.FPDFPage_InsertObject(page.raw, obj)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    buf = io.BytesIO()
    pdf.save(buf)
    pdfium_c.FPDFFont_Close(font)
    return buf.getvalue()


# -- documents that link a resource by URL (pandoc would fetch it without --sandbox) ----------


def odt_linking_image(url: str) -> bytes:
    """An OpenDocument text (written by pandoc) whose picture is linked by URL instead of
    embedded: the embedded picture's reference is rewritten to ``url`` and the picture
    removed from the package."""
    import tempfile

    import pypandoc

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "logo.png").write_bytes(png_scan())
        target = Path(tmp) / "doc.odt"
        pypandoc.convert_text(
            "# Archive rules\n\nPatient records are archived after ten years.\n\n![Logo](logo.png)\n",
            "odt", format="md", outputfile=str(target), extra_args=[f"--resource-path={tmp}"],  # a local file only
        )
        source = zipfile.ZipFile(target)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for info in source.infolist():
                data = source.read(info.filename)
                if info.filename.startswith("Pictures/"):
                    continue
                if info.filename == "content.xml":
                    data = re.sub(rb'xlink:href="Pictures/[^"]+"', b'xlink:href="' + url.encode() + b'"', data)
                    assert url.encode() in data
                if info.filename == "META-INF/manifest.xml":
                    data = re.sub(rb'<manifest:file-entry[^>]*Pictures/[^>]*/>', b"", data)
                zf.writestr(info, data, zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def rtf_linking_image(url: str) -> bytes:
    """An RTF whose picture is an INCLUDEPICTURE field pointing at a URL, and a hyperlink."""
    return (
        rb"{\rtf1\ansi\deff0 {\fonttbl {\f0 Times;}}"
        rb"{\pard\b Visitor badges\b0\par}"
        rb"{\pard Visitors return their badge at reception before leaving the building.\par}"
        rb"{\pard{\field{\*\fldinst INCLUDEPICTURE \"" + url.encode() + rb"\" \\* MERGEFORMATINET \\d}{\fldrslt }}\par}"
        rb"{\pard{\field{\*\fldinst HYPERLINK \"" + url.encode() + rb"\"}{\fldrslt badge office}}\par}}"
    )
