"""Ingestion: upload and request-body limits, chunking, personal-data detection, and the parse
sandbox's limits, batching and housekeeping (with their Celery routes and time limits)."""

from __future__ import annotations

import os

from apps.ingestion.parsing import chunking
from apps.ingestion.parsing.tuning import DEFAULTS as PARSE_DEFAULTS
from rag_platform.conf.env import env_bool, env_float, env_int, env_list
from rag_platform.conf.services import CELERY_TASK_SOFT_TIME_LIMIT, CELERY_TASK_TIME_LIMIT

# --- Uploads, request bodies, chunking, personal data ------------------------------------
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Request bodies (rag_platform.request_limits): upload routes take UPLOAD_REQUEST_MAX_BYTES
# (a multi-file form or a zip; each file at most UPLOAD_MAX_BYTES), every other route
# REQUEST_MAX_BYTES, and nothing past REQUEST_MAX_BYTES is read before sign-in.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024)
UPLOAD_REQUEST_MAX_BYTES = env_int("UPLOAD_REQUEST_MAX_BYTES", 4 * UPLOAD_MAX_BYTES)
FILE_UPLOAD_HANDLERS = [
    "rag_platform.request_limits.UploadSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Chunking: the defaults are apps.ingestion.parsing.chunking's (overlap tuned on SciFact dev,
# docs/benchmarks.md); the worker passes these to every parse (apps.ingestion.parse_settings).
CHUNK_MAX_CHARACTERS = env_int("CHUNK_MAX_CHARACTERS", chunking.CHUNK_MAX_CHARACTERS)
CHUNK_NEW_AFTER_CHARACTERS = env_int("CHUNK_NEW_AFTER_CHARACTERS", chunking.CHUNK_NEW_AFTER_CHARACTERS)
CHUNK_OVERLAP_CHARACTERS = env_int("CHUNK_OVERLAP_CHARACTERS", chunking.CHUNK_OVERLAP_CHARACTERS)
# The parsers' limits and switches (apps.ingestion.parsing.tuning holds the defaults and what
# each means), handed to the sandboxed parse child with its job, to the type check and to the
# zip upload's check (apps.ingestion.parse_settings): container expansion (zip bombs), image
# size (pixel bombs), the PDF text engine ("pdfium" or "pdfminer"), the tesseract binary and
# spaCy's sentence pipeline ("senter", or unstructured's own: "parser").
INGEST_ZIP_MAX_TOTAL_BYTES = env_int("INGEST_ZIP_MAX_TOTAL_BYTES", PARSE_DEFAULTS.zip_max_total_bytes)
INGEST_ZIP_MAX_RATIO = env_int("INGEST_ZIP_MAX_RATIO", PARSE_DEFAULTS.zip_max_ratio)
INGEST_ZIP_MAX_MEMBERS = env_int("INGEST_ZIP_MAX_MEMBERS", PARSE_DEFAULTS.zip_max_members)
INGEST_IMAGE_MAX_PIXELS = env_int("INGEST_IMAGE_MAX_PIXELS", PARSE_DEFAULTS.image_max_pixels)
PDF_TEXT_ENGINE = os.environ.get("PDF_TEXT_ENGINE", PARSE_DEFAULTS.pdf_text_engine)
TESSERACT_CMD = os.environ.get("TESSERACT_CMD", PARSE_DEFAULTS.tesseract_cmd)
SPACY_SENTENCES = os.environ.get("SPACY_SENTENCES", PARSE_DEFAULTS.spacy_sentences)
# Personal-data detection (apps.privacy) on every parsed chunk and every question. Off (0)
# skips it for collections whose policy is "index"; "mask" and "refuse" collections are
# always screened (apps.ingestion.personal_data).
PII_DETECTION = env_bool("RAG_PII_DETECTION", True)

# --- Ingestion (issue 3) ---
# Parse attempts before a file is quarantined (failed, set aside, audited).
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3)
INGEST_RETRY_BACKOFF_SECONDS = env_float("INGEST_RETRY_BACKOFF_SECONDS", 5.0)  # doubles per retry
# Each file is parsed in a forked child with these limits (memory on top of the worker's).
INGEST_PARSE_MEMORY_MB = env_int("INGEST_PARSE_MEMORY_MB", 1536)
INGEST_PARSE_CPU_SECONDS = env_int("INGEST_PARSE_CPU_SECONDS", 300)
INGEST_PARSE_WALL_SECONDS = env_int("INGEST_PARSE_WALL_SECONDS", 420)
INGEST_PARSE_NICE = env_int("INGEST_PARSE_NICE", 10)
# Where Landlock or seccomp is missing, sandbox children refuse to parse unless this is true
# (apps.ingestion.confinement; system check rag.E021, a warning rag.W021 when allowed).
INGEST_SANDBOX_ALLOW_WEAK = env_bool("INGEST_SANDBOX_ALLOW_WEAK", False)
# More folders the sandbox children may not read (comma-separated), besides the data
# directory, the secrets' folders and the fixed list (apps.ingestion.confinement.denied_paths).
INGEST_SANDBOX_DENY = env_list("INGEST_SANDBOX_DENY", [])
INGEST_PARSE_LEASE_SECONDS = env_int("INGEST_PARSE_LEASE_SECONDS", INGEST_PARSE_WALL_SECONDS + 60)
# An upload's type is decided in the same kind of child, in the process that received it
# (apps.ingestion.sniffing): memory on top of that process's, CPU seconds (wall clock: twice).
INGEST_SNIFF_MEMORY_MB = env_int("INGEST_SNIFF_MEMORY_MB", 1024)
INGEST_SNIFF_SECONDS = env_int("INGEST_SNIFF_SECONDS", 30)
INGEST_EMBED_LEASE_SECONDS = env_int("INGEST_EMBED_LEASE_SECONDS", 600)
INGEST_EMBED_BATCH_CHUNKS = env_int("INGEST_EMBED_BATCH_CHUNKS", 512)  # across documents
# The task holding the model turn waits up to WAIT seconds (polling every POLL) for more
# drafts while documents are being parsed and fewer than a batch are waiting (a lone upload
# does not wait), and goes on batch after batch for at most DRAIN seconds (apps.ingestion.embed_step).
INGEST_EMBED_WAIT_SECONDS = env_float("INGEST_EMBED_WAIT_SECONDS", 0.5)
INGEST_EMBED_POLL_SECONDS = env_float("INGEST_EMBED_POLL_SECONDS", 0.05)
INGEST_EMBED_DRAIN_SECONDS = env_float("INGEST_EMBED_DRAIN_SECONDS", 120.0)
# Small text files (txt, md, csv, html up to MAX_BYTES each) are parsed up to N at a time,
# TOTAL_BYTES together, in one sandboxed child: the fork of a worker holding the model costs
# more than parsing them, and the embed step that follows encodes them in one full batch.
INGEST_PARSE_BATCH_DOCS = env_int("INGEST_PARSE_BATCH_DOCS", 100)
# A bulk import sends its first group this early, so the model starts encoding while the rest
# is still being uploaded (apps.ingestion.services.bulk_enqueue).
INGEST_PARSE_FIRST_GROUP_DOCS = env_int("INGEST_PARSE_FIRST_GROUP_DOCS", 10)
INGEST_PARSE_BATCH_MAX_BYTES = env_int("INGEST_PARSE_BATCH_MAX_BYTES", 256 * 1024)
INGEST_PARSE_BATCH_TOTAL_BYTES = env_int("INGEST_PARSE_BATCH_TOTAL_BYTES", 1024 * 1024)
INGEST_BUSY_RECHECK_SECONDS = env_int("INGEST_BUSY_RECHECK_SECONDS", 15)
# Celery beat hands expired claims and unsent documents to new tasks this often
# (apps.ingestion.housekeeping), at most BATCH documents per pass.
INGEST_HOUSEKEEPING_SECONDS = env_float("INGEST_HOUSEKEEPING_SECONDS", 60.0)
INGEST_HOUSEKEEPING_BATCH = env_int("INGEST_HOUSEKEEPING_BATCH", 5000)
CELERY_TASK_ROUTES = {
    "audit.*": {"queue": "audit"},  # the signer's queue: only it holds the key
    "apps.ingestion.tasks.ingest_document": {"queue": "parse"},
    "apps.ingestion.tasks.embed_documents": {"queue": "embed"},
}
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_SOFT_TIME_LIMIT, INGEST_PARSE_WALL_SECONDS + 60)
CELERY_TASK_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT, CELERY_TASK_SOFT_TIME_LIMIT + 60)
