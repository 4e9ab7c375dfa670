"""The settings of rag_platform.settings, split by area.

Only rag_platform.settings imports these modules, in order, after rag_platform.process.start
(the offline environment, the egress guard); later modules read (and a few extend) settings
of earlier ones. Celery beat's one schedule is conf.beat.

Not here yet: a few variables are still read from the environment where they are used, at run
time (tests set them per test; the parse child reads them after the sandbox has cleared its
environment down to these names): the parse child's INGEST_ZIP_MAX_TOTAL_BYTES,
INGEST_ZIP_MAX_RATIO, INGEST_ZIP_MAX_MEMBERS, INGEST_IMAGE_MAX_PIXELS
(apps/ingestion/parsing/safety.py), SPACY_SENTENCES (parsing/offline.py), PDF_TEXT_ENGINE
(parsing/pdf.py), TESSERACT_CMD (parsing/ocr.py), INGEST_SANDBOX_ALLOW_WEAK and
INGEST_SANDBOX_DENY (sandbox.py, confinement.py); EMBEDDING_BACKEND (after the setting,
apps/ingestion/embedding.py); RAG_WORKERS (apps/ingestion/turns.py, read by the stack before
Django); the signer's RAG_AUDIT_SIGNING_KEY and RAG_AUDIT_SIGNING_KEY_FILE (apps/audit/signing.py,
only the signer has them); the vLLM server's RAG_VLLM_KVCACHE_GIB, RAG_VLLM_ENFORCE_EAGER and
RAG_LLM_DTYPE (rag_platform/process/vllm_server.py, started by the stack before Django).
"""
