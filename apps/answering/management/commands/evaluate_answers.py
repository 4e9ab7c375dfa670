import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.answering.evaluation import (
    documents_ingest,
    evaluation_user,
    questions_ask,
    outcome_record,
    questions_load,
    summary,
    summary_table,
    verified_listing,
)
from apps.retrieval.evaluation import evaluation_user as owner_user


class Command(BaseCommand):
    help = ("Answer quality on a question set (policy-qa-dev layout): ingests DATASET/docs through the product, "
            "asks every question as a staff user through the answering service, prints each outcome and a table.")

    def add_arguments(self, parser):
        parser.add_argument("dataset", type=Path)
        parser.add_argument("--collection", default=None, help="default: the dataset folder's name")
        parser.add_argument("--limit", type=int, default=None, help="a slice keeping the answerable/unanswerable mix")
        parser.add_argument("--llm-base-url", default=None, help="another on-premises vLLM to compare (OpenAI API)")
        parser.add_argument("--llm-model", default=None, help="its served model name")
        parser.add_argument("--dump", type=Path, default=None, help="write every outcome as a JSON line here")

    def handle(self, *args, dataset, collection, limit, llm_base_url, llm_model, dump=None, **options):
        if not (dataset / "questions.jsonl").exists() or not (dataset / "docs").is_dir():
            raise CommandError(f"{dataset} has no questions.jsonl and docs/ folder.")
        if llm_base_url:
            settings.LLM_BASE_URL = llm_base_url
        if llm_model:
            settings.LLM_MODEL = llm_model
        self.stdout.write(f"Model {settings.LLM_MODEL} at {settings.LLM_BASE_URL}")
        collection = collection or dataset.resolve().name
        target = documents_ingest(dataset, collection_name=collection, owner=owner_user(), progress=self.stdout.write)
        user = evaluation_user(target)
        questions = questions_load(dataset, limit=limit)

        def progress(o):
            verdict = "OK  " if o.correct else "FAIL"
            flag = f" FABRICATED({o.fabricated})" if o.fabricated else ""
            self.stdout.write(f"{verdict} {o.result.answer_kind:<10} {o.seconds:5.1f}s{flag} {o.question.text[:90]}")
            self.stdout.write(f"       expect {o.question.expect}: {o.result.answer[:200]!r}")
            if o.result.reason:
                self.stdout.write(f"       why: {o.result.reason}")

        outcomes = questions_ask(questions, user=user, collection=target, progress=progress)
        self.stdout.write("\nEvery answer labelled Verified, with the facts it was expected to hold:\n"
                          + verified_listing(outcomes))
        self.stdout.write("\n" + summary_table(summary(outcomes)))
        if dump:
            dump.write_text("".join(json.dumps(outcome_record(o)) + "\n" for o in outcomes), encoding="utf-8")
