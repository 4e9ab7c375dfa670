from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.retrieval.evaluation import MODES, dataset_evaluate, dataset_ingest, dataset_load


class Command(BaseCommand):
    help = (
        "Load a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels) into a collection through "
        "the product's ingestion path and print nDCG@k and recall@k of keyword-only, vector-only "
        "and hybrid search."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", type=Path, help="folder of a BEIR-format dataset")
        parser.add_argument("--collection", help="collection to load into (default: eval-<folder name>)")
        parser.add_argument("--max-documents", type=int, help="first N documents and the queries they answer")
        parser.add_argument("--k", type=int, default=10)

    def handle(self, *args, dataset, collection, max_documents, k, **options):
        data = dataset_load(dataset, max_documents=max_documents)
        name = collection or f"eval-{dataset.name}" + (f"-{max_documents}" if max_documents else "")
        self.stdout.write(f"{dataset}: {len(data.corpus)} documents, {len(data.queries)} queries; collection {name!r}")
        target = dataset_ingest(data, collection_name=name, progress=self.stdout.write)
        scores = dataset_evaluate(data, collection=target, k=k)
        self.stdout.write(f"{'search':<10} {'nDCG@' + str(k):>9} {'recall@' + str(k):>10} {'ms/query':>9}")
        for mode in MODES:
            s = scores[mode]
            self.stdout.write(f"{mode:<10} {s['ndcg']:>9.4f} {s['recall']:>10.4f} {s['ms_per_query']:>9.1f}")
        # Refusal calibration: every query here has a relevant document, so the cut-off
        # (RETRIEVAL_MAX_DISTANCE) must keep the best chunk of (nearly) all of them.
        distances = sorted(scores["vector"]["top_distances"])
        if distances:
            def at(q):
                return distances[min(len(distances) - 1, int(q * (len(distances) - 1)))]
            refused = sum(d > settings.RETRIEVAL_MAX_DISTANCE for d in distances)
            self.stdout.write(
                f"best-chunk cosine distance: median {at(0.5):.3f}, 95th percentile {at(0.95):.3f}, "
                f"99th {at(0.99):.3f}, max {distances[-1]:.3f}; RETRIEVAL_MAX_DISTANCE={settings.RETRIEVAL_MAX_DISTANCE} "
                f"would refuse {refused} of {len(distances)} answerable queries"
            )
