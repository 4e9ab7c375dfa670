"""The chaos benchmark's figures: per phase, per fault, in Markdown."""

from __future__ import annotations

from collections import Counter, defaultdict

OUTCOMES = ("answered", "refused", "error", "http_500", "hung", "connection")


def pct(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def phase_rows(results, audit: Counter) -> list[dict]:
    phases: dict[str, list] = defaultdict(list)
    for r in results:
        phases[r.phase].append(r)
    rows = []
    for phase, items in phases.items():
        count = Counter(r.outcome for r in items)
        answered = [r for r in items if r.outcome == "answered"]
        events = [audit.get(r.agent, 0) for r in items]
        rows.append({
            "phase": phase, "asked": len(items), **{k: count.get(k, 0) for k in OUTCOMES},
            "unlabelled": sum(1 for r in answered if not r.labelled),
            "ttft_p50": pct([r.ttft for r in items], .5), "ttft_p95": pct([r.ttft for r in items], .95),
            "total_p50": pct([r.total for r in answered], .5), "total_p95": pct([r.total for r in answered], .95),
            "events": sum(events), "without_one_event": sum(1 for e in events if e != 1),
            "details": Counter(r.detail for r in items if r.outcome not in ("answered", "refused")).most_common(3),
        })
    return rows


def markdown(meta: dict, rows: list[dict], faults: list[dict], docs: dict, verify: dict) -> str:
    out = [f"Run `{meta['command']}` at {meta['started']} UTC, {meta['users']} users, {meta['duration']:.0f} s of load, "
           f"{docs['generated']} documents; data directory: {meta['data_how']}; load average before/after: "
           f"{meta['load_before']} / {meta['load_after']}.", "",
           "| phase | asked | answered | refused | errored (clear) | 500 | hung | conn. | unlabelled | TTFT p50/p95 s | "
           "answer p50/p95 s | audit events | questions without exactly 1 event |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['phase']} | {r['asked']} | {r['answered']} | {r['refused']} | {r['error']} | {r['http_500']} | "
                   f"{r['hung']} | {r['connection']} | {r['unlabelled']} | {fmt(r['ttft_p50'])} / {fmt(r['ttft_p95'])} | "
                   f"{fmt(r['total_p50'])} / {fmt(r['total_p95'])} | {r['events']} | {r['without_one_event']} |")
    out += ["", "What users saw when a question did not succeed (most frequent per phase):", ""]
    for r in rows:
        if r["details"]:
            out.append(f"- {r['phase']}: " + "; ".join(f"{n}× “{d}”" for d, n in r["details"]))
    out += ["", "| fault | target | how it came back | process back after s | first answer after s | "
            "next indexed document after s | next signed head after s |", "|---|---|---|---|---|---|---|"]
    for f in faults:
        out.append(f"| {f['name']} | {f['target']} | {f['how']} | {fmt(f.get('back'))} | {fmt(f.get('answer'))} | "
                   f"{fmt(f.get('indexed'))} | {fmt(f.get('signed'))} |")
    out += ["", f"Documents: generated {docs['generated']}, uploaded {docs['uploaded']}, indexed {docs['indexed']}, "
            f"failed {docs['failed']} {docs['failed_reasons'] or ''}, unfinished {docs['unfinished']} "
            f"{docs['unfinished_titles'] or ''}, never uploaded {docs['not_uploaded_count']} "
            f"{docs['not_uploaded'] or ''}; duplicated: {docs['duplicated_rows']} rows, {docs['duplicated_chunks']} "
            f"chunk ordinals, {docs['indexed_twice_by_marker']} markers in two documents; parsed more than once "
            f"(a retry after a kill): {docs['attempts_over_1']}.",
            f"Import command: {meta['ingest']}.",
            f"`audit_verify --public-key <pin>` after the run: exit {verify['code']}: {verify['summary']}"]
    return "\n".join(out) + "\n"
