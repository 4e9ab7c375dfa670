"""What the chaos benchmark reads back after (and during) the run: documents, chunks, audit."""

from __future__ import annotations

import time
from collections import Counter


def users_script(count: int, password: str) -> str:
    """A manage.py shell script making ``count`` staff users (audited role changes)."""
    return (
        "from django.contrib.auth import get_user_model\n"
        "from apps.accounts.services import user_roles_set\n"
        "User = get_user_model()\n"
        f"for i in range({count}):\n"
        "    user, _ = User.objects.get_or_create(username=f'chaos{i:03d}')\n"
        f"    user.set_password({password!r}); user.save()\n"
        "    user_roles_set(user=user, roles=['staff'], changed_by=None, reason='chaos benchmark')\n"
        "print('users ready')\n"
    )


def documents(conn, collection: str) -> list[dict]:
    rows = conn.execute(
        "SELECT d.id, d.title, d.status, d.failure_reason, d.chunk_count, d.sha256, "
        "extract(epoch from d.indexed_at)::float8, d.attempts FROM corpus_document d JOIN corpus_collection c "
        "ON c.id = d.collection_id WHERE c.name = %s", [collection]).fetchall()
    keys = ("id", "title", "status", "reason", "chunk_count", "sha256", "indexed_at", "attempts")
    return [dict(zip(keys, row)) for row in rows]


def document_report(conn, collection: str, made: dict[str, str]) -> dict:
    """uploaded / indexed / failed (with reasons) / duplicated / lost, over the generated files."""
    rows = [r for r in documents(conn, collection) if r["title"] in made]
    by_title = Counter(r["title"] for r in rows)
    status = Counter(r["status"] for r in rows)
    reasons = Counter((r["reason"] or "")[:100] for r in rows if r["status"] == "failed")
    dup_chunks = conn.execute(
        "SELECT count(*) FROM (SELECT document_id, ordinal FROM corpus_chunk GROUP BY document_id, ordinal "
        "HAVING count(*) > 1) x").fetchone()[0]
    marker_docs = {}
    for marker in made.values():
        marker_docs[marker] = 0
    for (text_marker, docs) in conn.execute(
            "SELECT substring(text from 'CHAOS-[A-Za-z0-9]+-[0-9]{4}') m, count(DISTINCT document_id) FROM corpus_chunk "
            "WHERE text LIKE '%%CHAOS-%%' GROUP BY m").fetchall():
        if text_marker in marker_docs:
            marker_docs[text_marker] = docs
    unfinished = [r["title"] for r in rows if r["status"] not in ("indexed", "failed", "superseded")]
    return {
        "generated": len(made),
        "uploaded": len(by_title),
        "indexed": status.get("indexed", 0),
        "failed": status.get("failed", 0),
        "failed_reasons": dict(reasons),
        "unfinished": len(unfinished),
        "unfinished_titles": unfinished[:10],
        "not_uploaded": sorted(set(made) - set(by_title))[:10],
        "not_uploaded_count": len(set(made) - set(by_title)),
        "duplicated_rows": sum(1 for n in by_title.values() if n > 1),
        "duplicated_chunks": dup_chunks,
        "indexed_twice_by_marker": sum(1 for n in marker_docs.values() if n > 1),
        "status": dict(status),
        "attempts_over_1": sum(1 for r in rows if (r["attempts"] or 0) > 1),
    }


def indexed_times(conn, collection: str) -> list[float]:
    return sorted(r["indexed_at"] for r in documents(conn, collection) if r["indexed_at"])


def audit_by_agent(conn, run_id: str) -> Counter:
    rows = conn.execute("SELECT user_agent, count(*) FROM audit_auditevent WHERE event_type = 'question.asked' "
                        "AND user_agent LIKE %s GROUP BY user_agent", [f"chaos-bench/{run_id} %"]).fetchall()
    return Counter(dict(rows))


def checkpoints_after(conn, when: float) -> float | None:
    row = conn.execute("SELECT min(extract(epoch from created_at))::float8 FROM audit_auditcheckpoint "
                       "WHERE created_at > to_timestamp(%s)", [when]).fetchone()
    return row[0]


def wait_db(stack, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.db()
        except Exception:  # noqa: BLE001 - PostgreSQL may be restarting
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
