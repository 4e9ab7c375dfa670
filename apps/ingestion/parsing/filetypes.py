"""What kind of document an upload is, decided by its content.

Binary formats are recognised by libmagic (python-magic), or, where the libmagic shared
library is missing, by the pure-Python ``filetype`` package; containers are then opened to
tell their kinds apart (a zip holding ``word/document.xml`` is a .docx, an OLE compound file
with ``__substg1.0_`` streams an Outlook .msg). Text is this module's own layer: neither
library can tell Markdown from plain text, or a mislabelled export from a real text file,
so the declared name decides between text flavours and the content decides everything else.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path

from apps.ingestion.parsing import messages
from apps.ingestion.parsing.encoding import decode_text
from apps.ingestion.parsing.errors import ParseError
from apps.ingestion.parsing.formats import BINARY_EXTENSIONS, SUPPORTED_EXTENSIONS

logger = logging.getLogger(__name__)

# MIME types (libmagic's and filetype's spellings) -> what to do next.
_BY_MIME = {
    "application/pdf": ".pdf",
    "text/rtf": ".rtf",
    "application/rtf": ".rtf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tiff",
}
_ZIP_MIMES = {"application/zip", "application/x-zip-compressed", "application/epub+zip", "application/java-archive"}
_ZIP_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
_OLE_MIMES = {"application/x-ole-storage", "application/cdfv2", "application/vnd.ms-outlook", "application/msword",
              "application/vnd.ms-excel", "application/vnd.ms-powerpoint", "application/vnd.ms-office"}

_HTML_DOCUMENT_RE = re.compile(r"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_HTML_TAG_RE = re.compile(r"<(p|div|h[1-6]|body|table|ul|ol|li|br|span|a|section|article|b|i|em|strong)[\s>/]", re.I)
_MARKDOWN_HEADING_RE = re.compile(r"^#{1,6}[ \t]+\S", re.M)
_EMAIL_HEADERS_RE = re.compile(
    r"^(?:(?:Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version|Delivered-To|"
    r"X-[\w-]+):[^\n]*\n(?:[ \t][^\n]*\n)*){3,}", re.I
)


@lru_cache(maxsize=1)
def magic_backend() -> str:
    """"libmagic" when python-magic can load the shared library, else "filetype"."""
    try:
        import magic

        magic.from_buffer(b"%PDF-1.4\n", mime=True)
        return "libmagic"
    except Exception:  # noqa: BLE001 - ImportError, or libmagic1 missing (OSError inside)
        logger.info("libmagic is not available: file types come from the filetype package")
        return "filetype"


def content_mime(head: bytes) -> str:
    """The MIME type of a file from its first bytes, lower-cased ("" when unknown)."""
    if magic_backend() == "libmagic":
        import magic

        return (magic.from_buffer(head, mime=True) or "").lower()
    import filetype

    return (filetype.guess_mime(head) or "").lower()


def detect_file_type(path: Path, declared_name: str) -> str:
    """One of SUPPORTED_EXTENSIONS' keys (or ".zip"), decided by the content; the declared
    name only tells text flavours apart (a ``.md`` and a ``.txt`` can hold identical bytes)."""
    path = Path(path)
    declared_ext = Path(declared_name).suffix.lower()
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise messages.unreadable_upload(declared_name, exc.strerror) from exc
    if size == 0:
        raise messages.empty(declared_name)
    mime = content_mime(head)
    if mime in _BY_MIME:
        return _BY_MIME[mime]
    if mime in _ZIP_MIMES or mime.startswith(_ZIP_PREFIXES):
        return _zip_kind(path, declared_name)
    if mime in _OLE_MIMES:
        return _compound_file_kind(path, declared_name)
    decoded = decode_text(path)
    if decoded is None:
        raise _binary_refusal(path, declared_name, declared_ext)
    return _text_flavour(path, decoded[0], declared_name, declared_ext)


def _binary_refusal(path: Path, declared_name: str, declared_ext: str) -> ParseError:
    guess = _unstructured_filetype(path)
    kind = "binary content that is not a supported document" if guess in {"UNK", "EMPTY"} \
        else f"a {guess} file by its content"
    if declared_ext == ".pdf":
        return messages.not_a_pdf(declared_name, kind)
    if declared_ext == ".docx":
        return messages.not_a_docx(declared_name, f" ({kind}). The file may be damaged")
    return messages.unsupported(declared_name, f"contains {kind}")


def _text_flavour(path: Path, text: str, declared_name: str, declared_ext: str) -> str:
    # A text file named like a binary format is refused rather than guessed: it is a failed
    # export or a mislabelled upload, and the admin should know.
    if declared_ext in BINARY_EXTENSIONS:
        label = "a PDF" if declared_ext == ".pdf" else f"a {declared_ext} document"
        raise messages.unsupported(
            declared_name, f"is named like {label} but its content is plain text",
            "Export the document again, or rename the file to .txt if plain text is intended.",
        )
    if declared_ext and declared_ext not in SUPPORTED_EXTENSIONS:
        raise messages.unsupported(declared_name, f"has the extension {declared_ext!r}")
    if not text.strip():  # nothing in it: parse_and_chunk reports "no text"
        return declared_ext if declared_ext in SUPPORTED_EXTENSIONS else ".txt"
    if _HTML_DOCUMENT_RE.match(text.lstrip("\ufeff")[:4096]):
        return ".html"  # a whole HTML page, whatever its name (.txt, .md, none)
    if declared_ext in {".html", ".htm"}:
        if _HTML_TAG_RE.search(text) or _unstructured_filetype(path) == "HTML":
            return declared_ext
        return ".md" if _MARKDOWN_HEADING_RE.search(text) else ".txt"
    if declared_ext in {".md", ".markdown", ".txt", ".csv"}:
        return declared_ext
    if declared_ext == ".eml" or _EMAIL_HEADERS_RE.match(text.lstrip("\ufeff")[:2048]):
        return ".eml"
    if _unstructured_filetype(path) == "HTML":  # no extension at all: decide by content
        return ".html"
    return ".md" if _MARKDOWN_HEADING_RE.search(text) else ".txt"


def _zip_kind(path: Path, declared_name: str) -> str:
    is_docx = Path(declared_name).suffix.lower() == ".docx"
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise messages.damaged_zip(declared_name, "Word .docx document" if is_docx else "zip file") from exc
    if not names:
        raise messages.unsupported(declared_name, "is an empty or split zip archive")
    if "word/document.xml" in names:
        return ".docx"
    if "xl/workbook.xml" in names:
        return ".xlsx"
    if "ppt/presentation.xml" in names:
        return ".pptx"
    if "content.xml" in names and mimetype:
        if mimetype == b"application/vnd.oasis.opendocument.text":
            return ".odt"
        raise messages.unsupported(declared_name, f"is an OpenDocument file of type {mimetype.decode(errors='replace')!r}")
    if is_docx:
        raise messages.not_a_docx(declared_name, ": it is a zip archive without word/document.xml")
    return ".zip"  # an archive of documents: unpacked at upload


def _compound_file_kind(path: Path, declared_name: str) -> str:
    """An OLE compound file: an Outlook .msg, or a refused legacy .doc/.xls/.ppt."""
    try:
        import olefile

        with olefile.OleFileIO(str(path)) as ole:
            is_msg = any(entry[0].startswith("__substg1.0_") for entry in ole.listdir())
    except Exception as exc:  # noqa: BLE001 - not a readable compound file: cut off or damaged
        what = "an Outlook e-mail (.msg)" if Path(declared_name).suffix.lower() == ".msg" \
            else "a Microsoft Office or Outlook file"
        raise messages.damaged_compound_file(declared_name, what) from exc
    if is_msg:
        return ".msg"
    raise messages.unsupported(
        declared_name,
        "is a legacy Microsoft Office file (.doc/.xls/.ppt); these need LibreOffice, which this platform does not install",
        "Save it as .docx, .xlsx, .pptx or PDF and upload that.",
    )


def _unstructured_filetype(path: Path) -> str:
    """unstructured's content-only guess (libmagic + heuristics), e.g. "HTML", "PNG", "UNK".

    Given a real file (or a path) it also looks at the file name's extension, so it gets an
    anonymous in-memory copy of the first MiB. It cannot recognise Markdown by content."""
    from apps.ingestion.parsing.offline import ensure_offline_nlp

    ensure_offline_nlp()  # importing unstructured must happen with the opt-outs in place
    from unstructured.file_utils.filetype import detect_filetype

    try:
        with path.open("rb") as fh:
            head = io.BytesIO(fh.read(1024 * 1024))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its encoding guess warns for non-UTF-8 text
            return detect_filetype(file=head).name
    except Exception:  # noqa: BLE001 - a guess, not a verdict
        logger.debug("unstructured could not guess the type of %s", path, exc_info=True)
        return "UNK"
