"""pdfium and pdfminer read the same text from text PDFs, pdfium the faster; pdfium types
the boxes by their fonts, unstructured's pdfminer pass by its spaCy guess, so the chunks are
the same where the guess finds the headings. Plain functions, no database.

The corpus: the sample PDF, multi-page PDFs as bench/ingest.py writes them (three headed
abstracts per page) and SciFact abstracts rendered as bench/pdf_equivalence.py renders them;
the retrieval-level check (nDCG@10 through the whole product) is that script's job.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from apps.ingestion import parsing
from apps.ingestion.parse_settings import parse_tuning
from apps.ingestion.parsing import parse_and_chunk
from apps.ingestion.parsing.tuning import DEFAULTS, applied

PROJECT = Path(__file__).resolve().parents[1]
DATASET = PROJECT.parent / "shared" / "eval" / "scifact-dev"
OPTIONS = {"max_characters": parsing.CHUNK_MAX_CHARACTERS, "new_after_n_chars": parsing.CHUNK_NEW_AFTER_CHARACTERS,
           "overlap": parsing.CHUNK_OVERLAP_CHARACTERS}


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    sys.path[:0] = [str(PROJECT / "bench"), str(PROJECT / "sample_corpus")]
    try:
        import ingest
        import pdf_equivalence
    finally:
        del sys.path[:2]
    folder = tmp_path_factory.mktemp("pdfs")
    paths = [PROJECT / "sample_corpus" / "records-retention-schedule.pdf"]
    if DATASET.exists():
        for f in ingest.build_corpus(DATASET, 0, 4, 5, 0):
            (folder / f.name).write_bytes(f.data)
            paths.append(folder / f.name)
        for number, (doc_id, text) in enumerate(ingest._abstracts(DATASET)[:20]):
            name, data = pdf_equivalence.render_pdf(doc_id, f"Abstract {number}\n\n{text}")
            (folder / name).write_bytes(data)
            paths.append(folder / name)
    return paths


def engine(name: str):
    """Parse calls in the block read the text layer with ``name`` (the PDF_TEXT_ENGINE setting's tuning)."""
    return applied(replace(DEFAULTS, pdf_text_engine=name))


def _parse_all(paths, engine: str, settings) -> tuple[list, float]:
    settings.PDF_TEXT_ENGINE = engine
    started = time.process_time()
    out = [parse_and_chunk(p, p.name, **OPTIONS, tuning=parse_tuning()) for p in paths]
    return out, time.process_time() - started


def test_both_engines_give_identical_chunks_and_pdfium_is_faster(pdfs, settings):
    """Identical chunks (text, page, section) wherever unstructured's guess finds the
    headings the fonts mark; bench/ingest.py's PDFs, whose headings it partly misses, are
    the next test's."""
    parsing.warm_up()
    parse_and_chunk(pdfs[0], pdfs[0].name)  # first-call costs outside the timing
    mined, mined_cpu = _parse_all(pdfs, "pdfminer", settings)
    read, read_cpu = _parse_all(pdfs, "pdfium", settings)
    assert sum(len(c) for c in read) > len(pdfs)
    for path, a, b in zip(pdfs, mined, read, strict=True):
        if not path.name.startswith("report-"):
            assert a == b, path.name
    pages = {c.page_number for chunks in read for c in chunks}
    assert pages >= {1, 2}
    # CPU time, not wall time: the machine is shared. Measured ~6x (docs/benchmarks.md).
    assert read_cpu * 2.5 < mined_cpu, (read_cpu, mined_cpu)


def test_the_fonts_find_every_heading_the_guess_finds_and_the_ones_it_misses(pdfs):
    """Both engines read the same boxes in the same order on the same pages; every Title
    unstructured's guess gives is a Title by the fonts too, and in bench/ingest.py's PDFs
    (three bold 13 pt headings a page, the first eight words of an abstract) the fonts find
    all of them, where the guess calls those with a verb narrative text."""
    from apps.ingestion.parsing.pdf import parse_pdf

    parsing.warm_up()
    missed = 0
    for path in pdfs:
        with engine("pdfminer"):
            guessed = parse_pdf(path, path.name)
        with engine("pdfium"):
            typed = parse_pdf(path, path.name)
        assert [(el.text, el.metadata.page_number) for el in typed] == \
            [(el.text, el.metadata.page_number) for el in guessed], path.name
        titles = {el.text for el in typed if el.category == "Title"}
        assert {el.text for el in guessed if el.category == "Title"} <= titles, path.name
        if path.name.startswith("report-"):
            assert len(titles) == 3 * 5, path.name
            missed += len(titles) - sum(el.category == "Title" for el in guessed)
            assert all(c.section_title for c in parse_and_chunk(path, path.name, **OPTIONS))
    if DATASET.exists():
        assert missed > 0  # the guess does miss some: this corpus tells the two apart


WARM_CHILD_PROBE = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
from rag_platform.process.offline import apply_offline_environment
apply_offline_environment()
import django
django.setup()
from pathlib import Path
from apps.ingestion import parsing, sandbox
from unstructured.partition.utils import xycut
parsing.warm_up()
compiled = [f for f in (xycut.projection_by_bboxes, xycut.split_projection_profile) if f.signatures]

def parse_and_count(path):
    before = sum(len(f.signatures) for f in (xycut.projection_by_bboxes, xycut.split_projection_profile))
    chunks = parsing.parse_and_chunk(Path(path), "report.pdf")
    after = sum(len(f.signatures) for f in (xycut.projection_by_bboxes, xycut.split_projection_profile))
    return [len(chunks), before, after]

result = sandbox.run_limited(parse_and_count, {pdf!r}, memory_bytes=2 << 30, cpu_seconds=60, wall_seconds=120,
                             readable=[{pdf!r}])
print(len(compiled), *result.value)
"""


@pytest.mark.slow
def test_forked_parse_children_inherit_the_compiled_reading_order(pdfs, tmp_path):
    """The worker warms up once and forks a child per PDF: unstructured's XY-cut functions
    (numba) must already be compiled in the worker, for the types a real page uses, or every
    child compiles them again (~0.2 s of CPU per PDF). Checked in a fresh interpreter, since
    this test process may have parsed a PDF already."""
    import subprocess

    pdf = next(p for p in pdfs if p.name.startswith("report-")) if len(pdfs) > 1 else pdfs[0]
    script = WARM_CHILD_PROBE.format(root=str(PROJECT), pdf=str(pdf))
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    warmed, chunks, before, after = map(int, done.stdout.split()[-4:])
    assert warmed == 2  # both functions compiled by warm_up, in the parent
    assert chunks > 0
    assert before == after  # the child compiled nothing new: the page's types were warmed


def test_a_benchmark_pdf_keeps_every_character_of_its_abstract(tmp_path, settings):
    """bench/pdf_equivalence.py embeds a Unicode font: characters outside cp1252 (Greek,
    math, super/subscripts) reach the text layer, so the PDFs and the .txt files hold the
    same words (with standard Helvetica they became "?")."""
    sys.path.insert(0, str(PROJECT / "bench"))
    try:
        import pdf_equivalence
    finally:
        sys.path.remove(str(PROJECT / "bench"))
    abstract = ("β-catenin and TNF-α levels were ≥ 2.5 µm in 40 % of CD4⁺ cells (p ≤ 0.05); "
                "Δ ΔCt − 1.2 ± 0.3, “quoted”, naïve, Øresund, 10⁻³ M, H₂O.")
    name, data = pdf_equivalence.render_pdf("42", f"Signalling in T cells\n\n{abstract}")
    path = tmp_path / name
    path.write_bytes(data)
    for engine in ("pdfium", "pdfminer"):
        settings.PDF_TEXT_ENGINE = engine
        text = " ".join(" ".join(c.text.split()) for c in parse_and_chunk(path, name, **OPTIONS, tuning=parse_tuning()))
        assert "Signalling in T cells" in text and abstract in text, (engine, text)
