# Benchmarks and evaluation. Figures are written down in docs/benchmarks.md.
PYTHON ?= .venv/bin/python
DATASET ?= ../shared/eval/scifact-dev

.PHONY: bench-audit evaluate evaluate-answers bench-search bench-answer bench-ingest bench-ingest-ratio bench-pdf-equivalence bench-parse bench-embedding bench-scaleout bench-pii bench-chaos

# Retrieval quality (nDCG@10, recall@10: keyword, vector, hybrid) on a BEIR dataset,
# loaded through the product's ingestion into an embedded PostgreSQL under var/bench/.
evaluate:
	$(PYTHON) bench/search_env.py manage.py evaluate $(DATASET)

# Answer quality on policy-qa dev (60 questions): documents ingested and questions asked through
# the product, the packaged model served by vLLM here; LIMIT=N for a slice.
QA_DATASET ?= ../shared/eval/policy-qa-dev
evaluate-answers:
	RAG_VLLM_ENFORCE_EAGER=1 $(PYTHON) bench/answers.py $(QA_DATASET) $(if $(LIMIT),--limit $(LIMIT)) $(if $(DUMP),--dump $(DUMP))
	$(PYTHON) bench/answer_evidence.py --dataset $(QA_DATASET)

# Search at 300,000 and 1,000,000 chunks (SciFact embedded for real + synthetic noise, 100
# collections; readers of 100%, 10%, 1%): index builds, sizes, memory, p50/p95, recall@10 vs
# exact, the keyword half alone. A throwaway embedded PostgreSQL, deleted afterwards (KEEP=1).
SIZES ?= 300000,1000000
bench-search:
	$(PYTHON) bench/search.py --sizes $(SIZES) --queries 100 --variant RETRIEVAL_EXACT_MAX_CHUNKS=10000 $(if $(KEEP),--keep)

# Platform overhead at 32 concurrent askers vs vLLM direct, and time to first token.
bench-answer:
	$(PYTHON) bench/answer_load.py --concurrency 32

# Ingestion: upload -> indexed through real Celery workers (one worker with 1 and 2 pool
# processes, then 2 workers), pipeline vs raw encode of the same chunks (text files and text
# PDFs), pages/s for text PDFs and OCR scans, peak worker memory. DOCS=500 abstracts by default.
DOCS ?= 500
PDFS ?= 24
bench-ingest:
	$(PYTHON) bench/ingest.py --docs $(DOCS) --pdfs $(PDFS) --workers 1,2 --concurrency 1,2

# Pipeline / raw encode, alternated round by round, 1 vs 2 pool processes per worker: for
# one-abstract files (per-file work weighs most) and for documents of ten abstracts.
bench-ingest-ratio:
	$(PYTHON) bench/ingest.py --docs 300 --pdfs 0 --scans 0 --alternate 3 --concurrency 1,2
	$(PYTHON) bench/ingest.py --docs 40 --abstracts-per-doc 10 --pdfs 0 --scans 0 --alternate 3 --concurrency 1,2

# PDFs vs text: SciFact dev as .txt, as PDFs read by pdfium, as PDFs read by pdfminer:
# nDCG@10 per mode, chunk counts, identical chunks under both engines. MAX_DOCS=2101 for all.
# Then headed documents (policy-qa-dev's Markdown as PDFs): headings found as titles, retrieval.
MAX_DOCS ?= 500
bench-pdf-equivalence:
	$(PYTHON) bench/pdf_equivalence.py --dataset $(DATASET) --max-documents $(MAX_DOCS)
	$(PYTHON) bench/pdf_headings.py --retrieval

# Parsing: unstructured's own spaCy pipeline vs the product's (sentence recogniser, lazy tags):
# time for the same files, and a check that every file gives the same chunks.
bench-parse:
	$(PYTHON) bench/parse.py

# Embedding backends: PyTorch vs ONNX Runtime (fp32, int8): encode rate and nDCG@10.
bench-embedding:
	$(PYTHON) bench/embedding_backends.py --dataset $(DATASET)

# Scale-out: 1, 2, 4 worker processes on the system Redis (database REDIS_DB, flushed).
REDIS_DB ?= 9
bench-scaleout:
	$(PYTHON) bench/scaleout.py --docs $(DOCS) --redis-db $(REDIS_DB)

# Audit trail: writes/s at 1, 8, 32 concurrent writers (application role, audit_append),
# then full verification at 1,000,000 synthetic events and an incremental signed head.
bench-audit:
	$(PYTHON) bench/audit.py --events 1000000

# Personal-data detection: precision and recall per type on tests/data/pii_labelled.jsonl,
# the extra latency per question, and ingest chunks/s with detection on and off (in-process).
bench-pii:
	$(PYTHON) bench/pii.py --docs 200

# Under load and faults (issue 26): USERS askers over HTTP and a bulk import of CHAOS_DOCS mixed
# files from a second shell, while a parse worker, the embed worker, the signer, vLLM, Redis and
# PostgreSQL are SIGKILLed one at a time, then the data directory fills up. Report:
# var/bench/chaos-report.md (figures in docs/benchmarks.md). DURATION=120 USERS=10 CHAOS_DOCS=60 to iterate.
USERS ?= 50
DURATION ?= 600
CHAOS_DOCS ?= 500
bench-chaos:
	RAG_MODEL_DIR=$${RAG_MODEL_DIR:-} $(PYTHON) bench/chaos.py --users $(USERS) --duration $(DURATION) --docs $(CHAOS_DOCS) $(CHAOS_ARGS)
