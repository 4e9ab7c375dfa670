"""Sentence vectors for picking evidence, computed once per chunk and kept with it.

Choosing the evidence sentences (apps.answering.prompts.select_evidence) needs a vector per
sentence of the top sources. Encoding them on every question cost ~0.5 s of CPU per
question on a 2-core machine (about 24 sentences), taken from the vLLM server that decodes
on the same cores. The vectors depend only on the chunk's text and the embedding model,
so they are stored with the chunk (``Chunk.sentence_vectors``, float32) the first time the
chunk is a source, and read back afterwards. A chunk whose text changed gets new rows
(new chunks), and a stored value that does not match the text's sentence count (for
example after a change to the sentence splitter) is recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings

from apps.answering.prompts import split_sentences
from apps.corpus.models import Chunk
from apps.ingestion.embedding import embed_passages
from apps.retrieval.services import RetrievedChunk


def _decode(blob, count: int) -> np.ndarray | None:
    if blob is None:
        return None
    vectors = np.frombuffer(bytes(blob), dtype=np.float32)
    if vectors.size != count * settings.EMBEDDING_DIMENSIONS:
        return None
    return vectors.reshape(count, settings.EMBEDDING_DIMENSIONS)


def sentence_vectors(sources: Sequence[RetrievedChunk]) -> dict[int, np.ndarray]:
    """chunk id -> one unit vector per sentence of ``split_sentences(chunk.text)``."""
    sentences = {s.chunk_id: split_sentences(s.text) for s in sources}
    stored = dict(Chunk.objects.filter(id__in=list(sentences)).values_list("id", "sentence_vectors"))
    found: dict[int, np.ndarray] = {}
    missing: list[int] = []
    for chunk_id, texts in sentences.items():
        vectors = _decode(stored.get(chunk_id), len(texts))
        if vectors is None:
            missing.append(chunk_id)
        else:
            found[chunk_id] = vectors
    if missing:
        flat = embed_passages([t for chunk_id in missing for t in sentences[chunk_id]])
        offset = 0
        for chunk_id in missing:
            count = len(sentences[chunk_id])
            vectors = np.asarray(flat[offset: offset + count], dtype=np.float32).reshape(count, settings.EMBEDDING_DIMENSIONS)
            offset += count
            found[chunk_id] = vectors
            # A cache fill, not a change of content: a chunk deleted meanwhile updates nothing.
            Chunk.objects.filter(id=chunk_id).update(sentence_vectors=vectors.tobytes())
    return found


def stored_sentence_vectors(sources: Sequence[RetrievedChunk]) -> list[np.ndarray]:
    """``sentence_vectors`` in the order of ``sources`` (what select_evidence takes)."""
    found = sentence_vectors(sources)
    return [found[s.chunk_id] for s in sources]
