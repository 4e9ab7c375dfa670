"""Load the parsers and the embedding model before the first task needs them."""

from __future__ import annotations

import logging
import os
import time

from apps.ingestion import parsing
from apps.ingestion.parse_settings import parse_tuning

logger = logging.getLogger(__name__)

_warm = False


def warm_parent() -> None:
    """Import the parsers once in the worker so every forked child starts warm (the spaCy
    pipeline as the settings say: SPACY_SENTENCES)."""
    global _warm
    if not _warm:
        parsing.warm_up(parse_tuning())
        _warm = True


def warm_pool_process(*, parsers: bool = True, model: bool = True) -> None:
    """When a worker's pool process starts (the worker_process_init signal): load the parsers
    and the embedding model now, so the first documents after a start do not wait for them
    (seconds: docs/benchmarks.md) and a process that never encoded does not stall the pipeline the first
    time it takes a batch. A failure is only logged: the task that needs the model reports it."""
    started = time.monotonic()
    loaded = []
    try:
        if parsers:
            warm_parent()
            loaded.append("parsers")
            from django.conf import settings

            if settings.PII_DETECTION:  # the personal-data detector screens every parsed chunk
                from apps.privacy.detection import analyzer

                analyzer()
                loaded.append("personal-data detector")
        if model:
            from apps.ingestion.embedding import loaded_encoder

            loaded_encoder()
            loaded.append("embedding model")
    except Exception:
        logger.exception("pool process %s: warming the parsers and the embedding model failed", os.getpid())
        return
    if loaded:
        logger.info("pool process %s warm: %s loaded in %.1f s", os.getpid(), " and ".join(loaded), time.monotonic() - started)
