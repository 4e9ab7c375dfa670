"""Documents for the chaos benchmark's bulk import: mixed formats, every one unique.

Each file carries a marker (``CHAOS-<run>-<n>``) and its own sentences, so a document indexed
twice (two rows, or the same chunks twice) and a document lost (no row, or a row that never
finished) can be told apart from any other after the run.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

FORMATS = ("txt", "md", "html", "pdf", "docx", "txt", "md", "html")  # txt/md/html are the bulk of real imports
TOPICS = ("retention", "payments", "visitors", "security", "breach", "travel", "procurement", "training")


def sentences_from(sample_corpus: Path) -> list[str]:
    text = " ".join(p.read_text(errors="ignore") for p in sample_corpus.glob("*") if p.suffix in {".md", ".txt", ".html"})
    text = re.sub(r"<[^>]+>|[#*|`]", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if 40 < len(s.strip()) < 300]


def document_text(n: int, run: str, pool: list[str], rng: random.Random) -> tuple[str, list[str]]:
    topic = TOPICS[n % len(TOPICS)]
    marker = f"CHAOS-{run}-{n:04d}"
    paragraphs = [f"Reference {marker}. This {topic} notice number {n} applies to site {rng.randint(100, 999)} "
                  f"and was issued by office {rng.randint(1000, 9999)}."]
    for _ in range(rng.randint(2, 5)):
        paragraphs.append(" ".join(rng.sample(pool, 3)) + f" (clause {n}.{rng.randint(1, 99)}, {marker}).")
    return f"{topic.title()} notice {n}", paragraphs


def write_document(path: Path, title: str, paragraphs: list[str]) -> None:
    kind = path.suffix[1:]
    if kind == "txt":
        path.write_text(title + "\n\n" + "\n\n".join(paragraphs) + "\n")
    elif kind == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n")
    elif kind == "html":
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        path.write_text(f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")
    elif kind == "pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, title.encode("latin-1", "replace").decode("latin-1"), new_x="LMARGIN", new_y="NEXT")
        for p in paragraphs:
            pdf.multi_cell(0, 6, p.encode("latin-1", "replace").decode("latin-1"), new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(path))
    elif kind == "docx":
        import docx

        document = docx.Document()
        document.add_heading(title, level=1)
        for p in paragraphs:
            document.add_paragraph(p)
        document.save(str(path))
    else:
        raise ValueError(kind)


def generate(folder: Path, count: int, run: str, sample_corpus: Path, seed: int = 26) -> dict[str, str]:
    """Write ``count`` files into ``folder``; returns {file name: marker}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = sentences_from(sample_corpus)
    made = {}
    for n in range(count):
        name = f"chaos-{n:04d}.{FORMATS[n % len(FORMATS)]}"
        title, paragraphs = document_text(n, run, pool, rng)
        write_document(folder / name, title, paragraphs)
        made[name] = f"CHAOS-{run}-{n:04d}"
    return made
