"""The main job on the embedded default: users, a collection, the sample corpus ingested by
the Celery workers, a few questions answered by the vLLM model, and their audit events."""

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.answering.services import ask_question
from apps.answering.text import answer_as_text
from apps.audit.models import AuditEvent

SAMPLE_COLLECTION = "Policies"


class Command(BaseCommand):
    help = "Ingest the sample corpus, ask its sample questions, print answers and audit events."

    def add_arguments(self, parser):
        parser.add_argument("--questions", type=int, default=6, help="how many sample questions to ask")
        parser.add_argument("--wait-for-llm", type=float, default=0, metavar="SECONDS",
                            help="before asking, wait up to this long for the LLM server to answer")

    def handle(self, *args, questions, wait_for_llm, **options):
        corpus = settings.BASE_DIR / "sample_corpus"
        self.stdout.write(self.style.MIGRATE_HEADING("1. Demo users"))
        call_command("create_demo_users", stdout=self.stdout)
        self.stdout.write(self.style.MIGRATE_HEADING("2. Sample collection, ingested by the Celery worker"))
        call_command("create_collection", SAMPLE_COLLECTION, readers=["staff", "corpus_admin"],
                     description="Sample policies of a fictional hospital-and-bank group.", stdout=self.stdout)
        call_command("ingest", str(corpus), collection=SAMPLE_COLLECTION, wait=True, stdout=self.stdout)

        self.stdout.write(self.style.MIGRATE_HEADING("3. Questions, answered on premises"))
        if wait_for_llm:
            from rag_platform.process.vllm_server import wait_for_llm as wait

            self.stdout.write(f"  waiting for the LLM server at {settings.LLM_BASE_URL} …")
            wait(settings.LLM_BASE_URL, timeout=wait_for_llm)
        asker = get_user_model().objects.get(username="staff.demo")
        samples = json.loads((corpus / "questions.json").read_text())[:questions]
        sequences = []
        for sample in samples:
            self.stdout.write(f"\nQ: {sample['question']}")
            result = ask_question(user=asker, question=sample["question"])
            self.stdout.write(answer_as_text(result))
            sequences.append(result.audit_sequence)

        self.stdout.write(self.style.MIGRATE_HEADING("\n4. The audit events for these questions"))
        for event in AuditEvent.objects.filter(sequence__in=sequences).order_by("sequence"):
            cited = [r["chunk_id"] for r in event.payload.get("retrieved", []) if r.get("cited")]
            self.stdout.write(
                f"  #{event.sequence} {event.created_at:%Y-%m-%d %H:%M:%S} {event.actor_username} "
                f"{event.event_type} {event.outcome} cited_chunks={cited} "
                f"latency={event.payload.get('latency_ms')}ms hash={event.hash[:16]}… prev={event.prev_hash[:16]}…"
            )
