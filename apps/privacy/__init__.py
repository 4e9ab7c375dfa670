"""Personal data: finding it (Microsoft Presidio on the packaged spaCy model, offline) and
masking it with typed placeholders such as ``<PERSON>``.

The bottom app: it imports no other app, so ingestion, answering and the audit views can all
use it. ``detection`` finds spans and counts them by type, ``masking`` replaces them
(``mask_text``, ``mask_content`` for an audit payload).
"""
