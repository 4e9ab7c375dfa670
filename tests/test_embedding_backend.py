"""The ONNX embedding backend: exported once, offline, checksummed; same vectors as PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from apps.ingestion import embedding

TEXTS = [
    "Patient records are retained for 10 years after the last treatment.",
    "A 20,000 EUR transfer requires two approvals.",
    "Backup tapes are overwritten after 35 days. " * 30,  # longer than 256 tokens: truncated
]


@pytest.fixture
def onnx_cache(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    embedding._encoder.cache_clear()
    yield tmp_path
    embedding._encoder.cache_clear()


def test_onnx_vectors_match_pytorch(onnx_cache):
    onnx = np.asarray(embedding._encoder("onnx").encode(TEXTS, 32))
    torch = np.asarray(embedding._encoder("torch").encode(TEXTS, 32))
    assert onnx.shape == torch.shape == (3, 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1, atol=1e-5)
    assert (np.sum(onnx * torch, axis=1) > 0.999).all()


def test_export_is_cached_with_a_checksum_and_redone_when_it_does_not_match(onnx_cache):
    path = embedding.onnx_model_file()
    assert path.parent.parent == onnx_cache / "cache" / "onnx"
    checksum = (path.parent / "model.onnx.sha256").read_text().split()[0]
    assert checksum == embedding._sha256_file(path)
    mtime = path.stat().st_mtime_ns
    assert embedding.onnx_model_file() == path and path.stat().st_mtime_ns == mtime  # cached
    with path.open("r+b") as fh:  # a damaged or tampered file is exported again
        fh.seek(100)
        fh.write(b"\0" * 16)
    embedding.onnx_model_file()
    assert embedding._sha256_file(path) == checksum


def test_backend_setting(settings, onnx_cache):
    settings.EMBEDDING_BACKEND = "torch"
    assert embedding.embedding_backend() == "torch"
    settings.EMBEDDING_BACKEND = "tensorflow"
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        embedding.embedding_backend()
    settings.EMBEDDING_BACKEND = "onnx"
    vector = embedding.embed_query("Who approves a 20,000 EUR transfer?")
    assert len(vector) == 384
