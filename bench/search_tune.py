"""Tune the fusion on a dataset already loaded by ``manage.py evaluate`` (same database):
grid over RRF k, list weights, ts_rank normalisation and candidates; prints nDCG@10 per setting.

    .venv/bin/python bench/search_tune.py ../shared/eval/scifact-dev [--collection NAME]
"""

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_env import django_setup  # noqa: E402


def main() -> None:
    dataset_path = Path(sys.argv[1])
    collection_name = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--collection" else f"eval-{dataset_path.name}"
    django_setup()
    from django.test.utils import override_settings

    from apps.corpus.models import Collection
    from apps.retrieval.evaluation import dataset_evaluate, dataset_load

    import apps.retrieval.evaluation as evaluation

    cache = {}
    embed = evaluation.embed_passages

    def cached(texts):  # the queries are embedded once, not once per setting
        key = tuple(texts)
        if key not in cache:
            cache[key] = embed(texts)
        return cache[key]

    evaluation.embed_passages = cached
    data = dataset_load(dataset_path)
    collection = Collection.objects.get(name=collection_name)
    grid = itertools.product([20, 60], [(1.0, 1.0), (1.0, 0.7), (1.0, 0.5), (1.0, 0.3)], [0, 1, 32], [40])
    for rrf_k, (wv, wk), norm, cand in grid:
        with override_settings(RETRIEVAL_RRF_K=rrf_k, RETRIEVAL_VECTOR_WEIGHT=wv, RETRIEVAL_KEYWORD_WEIGHT=wk,
                               RETRIEVAL_TS_RANK_NORMALIZATION=norm, RETRIEVAL_CANDIDATES=cand):
            modes = ("hybrid", "keyword") if (wv, wk, rrf_k) == (1.0, 1.0, 60) else ("hybrid",)
            scores = dataset_evaluate(data, collection=collection, modes=modes)
        extra = f" keyword {scores['keyword']['ndcg']:.4f}" if "keyword" in scores else ""
        print(f"rrf_k={rrf_k:<3} wv={wv} wk={wk} norm={norm:<2} cand={cand}: hybrid nDCG@10 {scores['hybrid']['ndcg']:.4f} "
              f"recall {scores['hybrid']['recall']:.4f}{extra}", flush=True)


if __name__ == "__main__":
    main()
