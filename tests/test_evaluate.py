"""The evaluation command on a small slice of the SciFact dev set, as CI runs it."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.corpus.models import Chunk, Document

DATASET = Path(__file__).resolve().parents[2] / "shared" / "eval" / "scifact-dev"


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.skipif(not DATASET.exists(), reason=f"{DATASET} not present")
def test_evaluate_command_loads_through_ingestion_and_prints_the_table():
    out = StringIO()
    call_command("evaluate", str(DATASET), "--max-documents", "150", stdout=out)
    text = out.getvalue()
    print(text)
    # Loaded through the product's ingestion path: documents indexed, chunks with vectors and tsvectors.
    assert Document.objects.filter(status=Document.Status.INDEXED).count() == 150
    assert not Chunk.objects.filter(search_vector__isnull=True).exists()
    scores = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(r"^(keyword|vector|hybrid)\s+([\d.]+)\s+([\d.]+)", text, re.M)}
    assert set(scores) == {"keyword", "vector", "hybrid"}, text
    assert all(0.5 < ndcg <= 1 and 0.5 < recall <= 1 for ndcg, recall in scores.values()), scores
