"""Every message a corpus admin reads about a file that could not be indexed, written once.

Each function returns a :class:`ParseError` (the caller raises it): what is wrong with the
file and what to do about it, in one or two sentences, never a traceback or a library's
exception text. The ``code`` is the stable machine-readable reason.
"""

from __future__ import annotations

from apps.ingestion.parsing.errors import ParseError

SUPPORTED_HINT = (
    "Supported: PDF (scans through OCR), docx, pptx, xlsx, csv, odt, rtf, eml, msg, md, html, "
    "txt, png/jpg/tiff (OCR), and zip archives of these."
)
PDF_ADVICE = "Open it in a PDF viewer, save or export it again, and re-upload."


def unsupported(declared_name: str, what: str, todo: str = "") -> ParseError:
    msg = f"unsupported file type: {declared_name!r} {what}."
    if todo:
        msg += f" {todo}"
    return ParseError(f"{msg} {SUPPORTED_HINT}", code="unsupported")


def empty(declared_name: str) -> ParseError:
    return ParseError(
        f"empty file: {declared_name!r} has 0 bytes. Check the original and upload it again.", code="empty"
    )


def unreadable_upload(declared_name: str, reason: str | None) -> ParseError:
    return ParseError(f"the stored file for {declared_name!r} cannot be read ({reason}); upload it again.", code="corrupt")


def damaged(declared_name: str, label: str = "", advice: str = "") -> ParseError:
    """The parser could not read the file: its content is damaged. ``label`` and ``advice``
    come from the file's format (apps.ingestion.parsing.formats); "" for text."""
    if label:
        return ParseError(
            f"{declared_name!r} could not be read as {label}: its content is damaged or incomplete. {advice}",
            code="corrupt",
        )
    return ParseError(
        f"{declared_name!r} could not be read as text (unexpected content or character "
        "encoding). Save it as UTF-8 text and re-upload.",
        code="corrupt",
    )


def damaged_pdf(declared_name: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} could not be read as a PDF: its internal structure is damaged. "
        f"{PDF_ADVICE}",
        code="corrupt",
    )


def pdf_without_pages(declared_name: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} is a damaged PDF: no readable page was found. {PDF_ADVICE}", code="corrupt"
    )


def pdf_incomplete(declared_name: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} is an incomplete PDF (it has no end-of-file marker, usually "
        "because the upload or download was cut off). Download or export it again and re-upload.",
        code="corrupt",
    )


def not_a_pdf(declared_name: str, kind: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} is not a valid PDF: it does not start with '%PDF-' ({kind}). "
        "The file may be damaged; export or download it again.",
        code="corrupt",
    )


def not_a_docx(declared_name: str, why: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} is not a valid Word .docx document{why}. Save it again from Word and re-upload.",
        code="corrupt",
    )


def damaged_zip(declared_name: str, label: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} is a damaged {label} (the zip container cannot be read; the upload "
        "may be incomplete). Save or download it again and re-upload.",
        code="corrupt",
    )


def damaged_compound_file(declared_name: str, what: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} looks like {what} but is damaged or incomplete (its internal "
        "structure cannot be read). Save or export it again from the program that made it and re-upload.",
        code="corrupt",
    )


def password_protected(declared_name: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} is password-protected. Upload a copy without a password "
        "(for example, print it to a new PDF).",
        code="encrypted",
    )


def no_text(ext: str, declared_name: str) -> ParseError:
    if ext == ".pdf":
        return ParseError(
            f"{declared_name!r} has no text layer, and OCR found no readable text on its pages "
            "(blank pages, or images too faint to read). Check that the right file was uploaded.",
            code="no_text",
        )
    return ParseError(f"{declared_name!r} contains no text (it is empty or whitespace only).", code="no_text")


def no_ocr(declared_name: str, what: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} {what} and needs OCR, but OCR is not installed on this server "
        "(Debian package tesseract-ocr; `python3 bootstrap.py install` adds it when run as root). "
        "Ask the operator to install it, or upload a searchable PDF.",
        code="no_ocr",
    )


def image_unreadable(declared_name: str) -> ParseError:
    return ParseError(f"{declared_name!r} could not be read as an image: it is damaged.", code="corrupt")


def pixel_bomb(declared_name: str, detail: str) -> ParseError:
    return ParseError(f"{declared_name!r} is a decompression bomb image ({detail}). It was refused.", code="hostile")


def image_too_large(declared_name: str, width: int, height: int, limit: int) -> ParseError:
    return ParseError(
        f"{declared_name!r} is a {width:,} x {height:,} pixel image, over the limit of {limit:,} pixels "
        "(a decompression bomb, or a scan at an absurd resolution). It was refused.",
        code="hostile",
    )


def too_many_members(declared_name: str, count: int, limit: int) -> ParseError:
    return ParseError(f"{declared_name!r} holds {count:,} files, more than the limit of {limit:,}.", code="hostile")


def unsafe_member_path(declared_name: str, member: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} contains an unsafe path name ({member!r}) that points outside the "
        "archive; it was refused. Re-create the archive from the folder itself.",
        code="hostile",
    )


def zip_bomb_member(declared_name: str, member: str, ratio: int, size: int) -> ParseError:
    return ParseError(
        f"{declared_name!r} looks like a zip bomb: {member!r} expands {ratio:,} times to {size:,} bytes. "
        "It was refused.",
        code="hostile",
    )


def zip_bomb_total(declared_name: str, total: int, limit: int) -> ParseError:
    return ParseError(
        f"{declared_name!r} looks like a zip bomb: it expands to {total:,} bytes, over the limit "
        f"of {limit:,}. It was refused.",
        code="hostile",
    )


def xml_declarations(declared_name: str, part: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} contains XML with a DOCTYPE or entity declarations ({part}); office "
        "documents never need them, and they are used for external-entity and 'billion laughs' "
        "attacks. It was refused.",
        code="hostile",
    )
