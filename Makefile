# Benchmarks and evaluation. Figures are written down in docs/benchmarks.md.
PYTHON ?= .venv/bin/python
DATASET ?= ../shared/eval/scifact-dev

.PHONY: evaluate bench-search bench-answer

# Retrieval quality (nDCG@10, recall@10: keyword, vector, hybrid) on a BEIR dataset,
# loaded through the product's ingestion into an embedded PostgreSQL under var/bench/.
evaluate:
	$(PYTHON) bench/search_env.py manage.py evaluate $(DATASET)

# Search latency at 100,000 chunks and filtered recall under a 10% permission filter.
bench-search:
	$(PYTHON) bench/search.py

# Platform overhead at 32 concurrent askers vs vLLM direct, and time to first token.
bench-answer:
	$(PYTHON) bench/answer_load.py --concurrency 32
