"""The bottom layer of rag_platform: what every process applies before anything else.

The offline switches (``offline``), the egress guard (``egress``, ``egress_policy``,
``egress_refusals``), the process role and data directory (``runtime``), the client's
address behind proxies, the model folder's manifest and checksums, the vLLM server process.
It imports no app, so apps may import it; the wiring on top (settings, URLs, entry points,
Celery, the stack) they may not (import-linter, pyproject.toml).
"""
