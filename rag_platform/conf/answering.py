"""Answering: the LLM and embedding models, retrieval (hybrid search) and the answer's evidence,
answerability and grounding thresholds."""

from __future__ import annotations

import os
from pathlib import Path

from rag_platform.conf.core import DATA_DIR
from rag_platform.conf.env import env_float, env_int
from rag_platform.process.runtime import endpoint, secret_from_env_or_file

# --- Models ----------------------------------------------------------------------------
LLM_BASE_URL = endpoint("LLM_BASE_URL") or "http://127.0.0.1:8001/v1"
LLM_MODEL = os.environ.get("LLM_MODEL") or endpoint("LLM_MODEL") or "smollm2-135m-instruct"
LLM_MODEL_SHA256 = os.environ.get("LLM_MODEL_SHA256") or endpoint("LLM_MODEL_SHA256") or ""
# How LLM_MODEL_SHA256 is known: the embedded stack re-hashes the served files at start and
# says "verified at start"; a remote model's checksum is the operator's word.
LLM_MODEL_SHA256_SOURCE = (os.environ.get("LLM_MODEL_SHA256_SOURCE") or endpoint("LLM_MODEL_SHA256_SOURCE")
                           or ("operator-supplied" if LLM_MODEL_SHA256 else ""))
LLM_API_KEY = secret_from_env_or_file("LLM_API_KEY") or "not-needed-on-premises"
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 120.0)
# The whole streamed answer, first byte to last: a model server that trickles or stalls ends
# the question with a labelled error (and its audit event) before the web server's own 300 s.
LLM_ANSWER_DEADLINE_SECONDS = env_float("LLM_ANSWER_DEADLINE_SECONDS", 240.0)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 160)
# vLLM sampling extension; stops small models from looping on a sentence.
LLM_REPETITION_PENALTY = env_float("LLM_REPETITION_PENALTY", 1.1)
# Where the converted model is kept (the stack and the tests' vLLM read RAG_MODEL_DIR too);
# the packaged model's tokenizer is read from here (apps.answering.tokens).
LLM_MODEL_DIR = Path(os.environ.get("RAG_MODEL_DIR") or DATA_DIR / "models")

EMBEDDING_MODEL_PATH = os.environ.get("EMBEDDING_MODEL_PATH") or ""  # "" = packaged MiniLM
EMBEDDING_DIMENSIONS = 384
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32)
# "onnx" or "torch"; "" = apps.ingestion.embedding.DEFAULT_BACKEND (onnx).
EMBEDDING_BACKEND = os.environ.get("EMBEDDING_BACKEND", "")

RETRIEVAL_TOP_K = env_int("RETRIEVAL_TOP_K", 4)
# Cosine distance above which a passage is not considered relevant at all.
RETRIEVAL_MAX_DISTANCE = env_float("RETRIEVAL_MAX_DISTANCE", 0.75)
# Evidence, answerability and grounding (apps/answering: evidence, answerability,
# grounding); defaults chosen on the policy-qa dev set (docs/benchmarks.md).
ANSWER_EVIDENCE_SOURCES = env_int("ANSWER_EVIDENCE_SOURCES", 4)
# Other chunks of the shown passages' documents (of the first ANSWER_SAME_DOCUMENT_DOCUMENTS)
# that evidence may come from; one is cited when its window is among the best. Off: it puts
# the fact in the best 3 windows more often but not in the quotation (docs/benchmarks.md).
ANSWER_SAME_DOCUMENT_CHUNKS = env_int("ANSWER_SAME_DOCUMENT_CHUNKS", 0)
ANSWER_SAME_DOCUMENT_DOCUMENTS = env_int("ANSWER_SAME_DOCUMENT_DOCUMENTS", 1)
# Evidence ranking (apps/answering/evidence.py), measured on both dev sets (docs/benchmarks.md):
# the share of the question vector taken from its asked sentences when it also tells a story,
# and the bonus (or malus) for naming something the question does not, on who/which/where.
ANSWER_ASKED_VECTOR_WEIGHT = env_float("ANSWER_ASKED_VECTOR_WEIGHT", 0.5)
ANSWER_NAME_WEIGHT = env_float("ANSWER_NAME_WEIGHT", 0.2)
ANSWER_FIGURE_KIND = env_int("ANSWER_FIGURE_KIND", 1)  # "how many weeks" needs weeks (answerability)
ANSWER_KEYWORD_WEIGHT = env_float("ANSWER_KEYWORD_WEIGHT", 0.8)
ANSWER_FIGURE_WEIGHT = env_float("ANSWER_FIGURE_WEIGHT", 0.1)
ANSWER_MIN_EVIDENCE_SCORE = env_float("ANSWER_MIN_EVIDENCE_SCORE", 0.65)
# Evidence score taken off per specific question word no passage mentions (answerability):
# 0.3 refuses exactly what the old veto refused on both dev sets, yet answers a paraphrased
# question whose evidence is strong (docs/benchmarks.md).
ANSWER_MISSING_TERM_PENALTY = env_float("ANSWER_MISSING_TERM_PENALTY", 0.3)
# wordfreq Zipf frequencies below which a question's noun/adjective (resp. any other word)
# is specific: the passages must mention it (apps/answering/answerability.py).
ANSWER_SPECIFIC_ZIPF = env_float("ANSWER_SPECIFIC_ZIPF", 4.1)
ANSWER_RARE_ZIPF = env_float("ANSWER_RARE_ZIPF", 3.3)
ANSWER_MIN_OVERLAP = env_float("ANSWER_MIN_OVERLAP", 0.7)  # share of a sentence's words its passage holds
ANSWER_QUOTE_MAX_CHARACTERS = env_int("ANSWER_QUOTE_MAX_CHARACTERS", 400)
# "small" (one short answer from the best evidence sentences) or "capable" (whole passages,
# several cited sentences); "" = from the model's name (apps/answering/profiles.py).
LLM_PROMPT_PROFILE = os.environ.get("LLM_PROMPT_PROFILE", "")

# --- Retrieval and answering (issue 4) ---
# Hybrid search: nearest chunks (HNSW) and full-text matches (GIN), fused by weighted RRF.
RETRIEVAL_CANDIDATES = env_int("RETRIEVAL_CANDIDATES", 40)  # per list, before fusion
# hnsw.ef_search (>= candidates). bench/search.py at 100,000 chunks, 10% permission filter:
# recall@10 against exact search 0.90 at 300, 0.95 at 600, 0.98 at 800, 0.99 at 1000, for
# a few ms more per search (the walk otherwise stays in a cluster of near-duplicates).
RETRIEVAL_EF_SEARCH = env_int("RETRIEVAL_EF_SEARCH", 1000)
# When the permission filter (and the picked collections/documents) keep at most this many
# chunks, the vector half computes exact distances over them instead of walking the HNSW
# graph: recall 1.0 and k results however selective the filter. Beyond it the walk is
# faster: exact costs ~5 us per chunk here (vectors are TOASTed), 51 ms for 10,000 chunks
# vs 11 ms through the index; the two cross at 3,000-5,000 chunks (bench, 100,000 chunks).
RETRIEVAL_EXACT_MAX_CHUNKS = env_int("RETRIEVAL_EXACT_MAX_CHUNKS", 3000)
# hnsw.max_scan_tuples: how many graph nodes an iterative HNSW scan may visit before it gives
# up on finding enough rows the permission filter keeps (pgvector's default: 20,000).
RETRIEVAL_HNSW_MAX_SCAN_TUPLES = env_int("RETRIEVAL_HNSW_MAX_SCAN_TUPLES", 20000)
# Tuned on SciFact dev (bench/search_tune.py): ts_rank has no IDF, so the keyword list is
# weaker than BM25 and gets a lower weight; RRF k=20 trusts the top ranks more than k=60.
RETRIEVAL_RRF_K = env_int("RETRIEVAL_RRF_K", 20)
RETRIEVAL_VECTOR_WEIGHT = env_float("RETRIEVAL_VECTOR_WEIGHT", 1.0)
RETRIEVAL_KEYWORD_WEIGHT = env_float("RETRIEVAL_KEYWORD_WEIGHT", 0.3)
RETRIEVAL_TS_RANK_NORMALIZATION = env_int("RETRIEVAL_TS_RANK_NORMALIZATION", 1)
# Words in more than this fraction of chunks are left out of the keyword query.
RETRIEVAL_KEYWORD_MAX_TERM_FREQUENCY = env_float("RETRIEVAL_KEYWORD_MAX_TERM_FREQUENCY", 0.02)
# ... once the table holds this many chunks (below it, every word counts).
RETRIEVAL_KEYWORD_STATS_MIN_CHUNKS = env_int("RETRIEVAL_KEYWORD_STATS_MIN_CHUNKS", 2000)
# The served model's context window (vLLM --max-model-len) and its tokenizer.json
# ("" = the converted model's folder); prompts are fitted to it by token count.
LLM_CONTEXT_TOKENS = env_int("LLM_CONTEXT_TOKENS", 2048)
LLM_TOKENIZER_PATH = os.environ.get("LLM_TOKENIZER_PATH") or ""
LLM_CONNECT_TIMEOUT_SECONDS = env_float("LLM_CONNECT_TIMEOUT_SECONDS", 5.0)
LLM_RETRIES = env_int("LLM_RETRIES", 1)  # before the first token only
# Follow-ups: how many earlier turns of a conversation feed the standalone rewrite.
ANSWER_FOLLOW_UP_TURNS = env_int("ANSWER_FOLLOW_UP_TURNS", 1)
