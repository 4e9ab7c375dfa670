from pathlib import Path

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
