"""Under load and faults nothing is lost (issue 26): ``make bench-chaos``.

Starts the embedded stack as a user does (``python3 bootstrap.py run --no-demo``, its own data
directory on a size-limited tmpfs), signs in USERS people who ask over HTTP every few seconds
(web stream and API), imports DOCS generated documents of mixed formats with the README's
``ingest`` command from a second shell (``env -i``), and meanwhile SIGKILLs, one at a time, a
parse worker, the embed worker, the signer, vLLM, Redis and PostgreSQL (the stack's supervisor
starts each again), then fills the data directory. Then it counts: questions per outcome and
phase, audit events per question, documents indexed / failed / duplicated / lost, recovery
times, and runs ``audit_verify`` with the pinned key. Report: var/bench/chaos-report.md.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chaos_checks as checks  # noqa: E402
import chaos_corpus  # noqa: E402
import chaos_load  # noqa: E402
import chaos_report  # noqa: E402
from chaos_stack import ROOT, Stack, alive, celery_master, children, find_target, leftover_processes, say  # noqa: E402

FAULTS = ("parse", "embed", "signer", "vllm", "redis", "postgres", "disk")


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def setup(stack: Stack, args, made_dir: Path, run_id: str) -> dict[str, str]:
    COLLECTION = args.collection
    for command in (f".venv/bin/python manage.py create_collection {COLLECTION} --readers staff corpus_admin",
                    f".venv/bin/python manage.py ingest sample_corpus --collection {COLLECTION} --wait",
                    ".venv/bin/python manage.py shell -c " + shlex.quote(checks.users_script(args.users, chaos_load.PASSWORD))):
        result = stack.shell(command, timeout=900)
        say(f"$ {command[:100]} -> exit {result.returncode}")
        if result.returncode != 0:
            raise RuntimeError(result.stdout[-2000:] + result.stderr[-2000:])
    return chaos_corpus.generate(made_dir, args.docs, run_id, ROOT / "sample_corpus")


def one_user(load: chaos_load.Load, count: int) -> None:
    """``count`` questions by one user alone, after one warm-up question (the first after a start
    loads the query encoder and each passage's sentence vectors) in a phase of its own."""
    web = chaos_load.sign_in(load.base, "chaos000", load.timeout)
    for i in range(count + 1):
        load.phase = "1 user, no fault" if i else "warm-up: first question after start"
        result = chaos_load.Result(user="chaos000", channel="web", phase=load.phase, started=time.monotonic(),
                                   agent=f"chaos-bench/{load.run_id} q={uuid.uuid4().hex}")
        chaos_load.ask_once(load, web, result, load.questions[i % len(load.questions)], None, True)
        load.record(result)


def fill_disk(data: Path) -> int:
    """Write a ballast file until the data directory's file system is full; returns bytes."""
    block, written = b"\0" * (4 << 20), 0
    with open(data / "chaos-ballast", "wb") as handle:
        try:
            while True:
                handle.write(block)
                handle.flush()
                written += len(block)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return written


def fault(stack: Stack, load: chaos_load.Load, name: str, slice_s: float, hold: float) -> dict:
    load.phase = f"fault: {name}"
    record = {"name": name, "wall": time.time(), "mono": time.monotonic()}
    if name == "disk":
        if not stack.mounted:
            record.update(target="–", how="not run: no size-limited mount here")
            return record
        written = fill_disk(stack.data)
        record.update(target=f"{stack.data} full ({written >> 20} MiB ballast)",
                      how=f"ballast removed after {hold:.0f} s (the operator frees space)")
        say(f"data directory full ({written >> 20} MiB ballast); holding {hold:.0f} s")
        load.stop.wait(hold)
        (stack.data / "chaos-ballast").unlink()
        record["back"] = hold
        load.stop.wait(max(0.0, slice_s - hold))
        return record
    pid, how = find_target(stack, name)
    if pid is None:
        record.update(target="–", how=f"not run: {how}")
        return record
    os.kill(pid, signal.SIGKILL)
    say(f"SIGKILL {name} (pid {pid}: {how})")
    record.update(target=f"pid {pid}: {how}", how="stack supervisor" if name not in ("parse", "embed")
                  else "Celery's master forks a new pool process; the task is redelivered (acks_late)")
    deadline = time.monotonic() + max(slice_s, 120)
    while time.monotonic() < deadline:
        if name in ("parse", "embed"):
            master = celery_master(stack, "ingest")
            back = bool(master) and len([p for p in children(master) if p != pid and alive(p)]) >= args_pool(stack)
        else:
            new, _ = find_target(stack, name, wait=0)
            back = bool(new) and new != pid and alive(new)
        if back:
            record["back"] = time.monotonic() - record["mono"]
            break
        time.sleep(0.5)
    if name == "vllm":  # the next fault waits for the model to serve again (a cold start)
        record["how"] += "; the next fault waits until it serves again"
        models = stack.endpoints()["LLM_BASE_URL"] + "/models"
        while time.monotonic() < record["mono"] + 900 and not _serves(models):
            time.sleep(2)
    load.stop.wait(max(0.0, slice_s - (time.monotonic() - record["mono"])))
    return record


def _serves(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def args_pool(stack: Stack) -> int:
    """Pool processes the ingest worker runs (its --concurrency)."""
    master = celery_master(stack, "ingest")
    words = Path(f"/proc/{master}/cmdline").read_bytes().split(b"\0") if master else []
    return int(words[words.index(b"--concurrency") + 1]) if b"--concurrency" in words else 2


def recovery(record: dict, load: chaos_load.Load, indexed: list[float], heads) -> None:
    answers = [r.started + r.total for r in load.results if r.outcome == "answered" and r.started >= record["mono"]]
    record["answer"] = min(answers) - record["mono"] if answers else None
    later = [t for t in indexed if t > record["wall"]]
    record["indexed"] = later[0] - record["wall"] if later else None
    signed = heads(record["wall"])
    record["signed"] = signed - record["wall"] if signed else None


def finish_import(stack: Stack, importer, command: str, log: Path, wait: float) -> str:
    """Wait for the import (at most ``wait`` s in all); one that failed is run again, as an operator would."""
    deadline = time.monotonic() + wait
    try:
        importer.wait(wait)
    except Exception:  # noqa: BLE001 - still running at the cut-off
        os.killpg(importer.pid, signal.SIGTERM)
        return f"still waiting {wait:.0f} s after the load ended: stopped there (log {log})"
    if importer.returncode == 0:
        return "exit 0 (every file finished)"
    last = log.read_text(errors="replace").strip().splitlines()[-1][:160]
    say(f"the import exited {importer.returncode}; running it again as the operator would")
    try:
        again = f"exit {stack.shell(command, timeout=max(60.0, deadline - time.monotonic())).returncode}"
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: stopped at the cut-off
        again = "still waiting at the cut-off"
    return f"exit {importer.returncode} (“{last}”); re-run by the operator: {again}"


def run(args) -> int:
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "var" / "bench"
    stack = Stack(base / "chaos", args.web_port, args.llm_port, args.model_dir)
    meta = {"command": " ".join(["make bench-chaos", *sys.argv[1:]]), "users": args.users, "duration": args.duration,
            "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load_before": load_avg()}
    args.collection = COLLECTION = f"Chaos-{run_id}"
    running = (stack.data / "run" / "stack.json").exists() and alive(int(stack.endpoints()["SUPERVISOR_PID"]))
    meta["data_how"] = "the running stack's (--keep)" if running else stack.prepare(args.tmpfs_mb)
    stack.mounted = stack.mounted or os.path.ismount(stack.data)
    load = chaos_load.Load(base=f"http://127.0.0.1:{args.web_port}", questions=[
        q["question"] for q in json.loads((ROOT / "sample_corpus" / "questions.json").read_text())],
        timeout=args.timeout, think=(args.think * 0.5, args.think * 1.5), run_id=run_id)
    faults: list[dict] = []
    try:
        if not running:
            stack.start()
        say("stack ready")
        shutil.rmtree(base / "chaos-docs", ignore_errors=True)
        made = setup(stack, args, base / "chaos-docs", run_id)
        one_user(load, args.baseline)
        faults_run = [f for f in args.faults.split(",") if f]
        slice_s = args.duration / (len(faults_run) + 1)
        load.phase = f"{args.users} users, no fault"
        threads = chaos_load.start_askers(load, args.users)
        command = (f".venv/bin/python manage.py ingest {base / 'chaos-docs'} --collection {COLLECTION} --wait "
                   f"--timeout {args.import_timeout}")
        ingest_log = base / "chaos-ingest.log"
        importer = stack.shell_background(command, ingest_log)
        load.stop.wait(slice_s)
        for name in faults_run:
            faults.append(fault(stack, load, name, slice_s, args.disk_hold))
        load.phase = "after the faults"
        load.stop.set()
        for thread in threads:
            thread.join(args.timeout + 30)
        meta["ingest"] = finish_import(stack, importer, command, ingest_log, args.import_timeout)
        (base / "chaos-raw.json").write_text(json.dumps({"meta": meta, "faults": faults, "made": made, "run_id": run_id,
                                                         "results": [vars(r) for r in load.results]}, default=str))
        say("waiting 70 s for the signer's next head, then verifying")
        time.sleep(70)
        pin = stack.endpoints().get("RAG_AUDIT_PIN", "")
        verified = stack.shell(f".venv/bin/python manage.py audit_verify --public-key {pin}", timeout=900)
        verify = {"code": verified.returncode, "summary": " ".join((verified.stdout + verified.stderr).split())[-400:]}
        with checks.wait_db(stack) as conn:
            docs = checks.document_report(conn, COLLECTION, made)
            audit = checks.audit_by_agent(conn, run_id)
            indexed = checks.indexed_times(conn, COLLECTION)
            for record in faults:
                recovery(record, load, indexed, lambda t: checks.checkpoints_after(conn, t))
        meta["load_after"] = load_avg()
        rows = chaos_report.phase_rows(load.results, audit)
        text = chaos_report.markdown(meta, rows, faults, docs, verify)
        (base / "chaos-report.md").write_text(text)
        (base / "chaos-report.json").write_text(json.dumps({"meta": meta, "phases": rows, "faults": faults,
                                                            "documents": docs, "verify": verify}, indent=2, default=str))
        print(text)
        return 0
    finally:
        if not args.keep:
            stack.stop()
            stack.release()
            left = leftover_processes()
            say("no process of this worktree left" if not left else "LEFT RUNNING:\n" + "\n".join(left))
        say(f"stack log: {stack.log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (split over the phases)")
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--think", type=float, default=4.0, help="mean seconds between a user's questions")
    parser.add_argument("--timeout", type=float, default=150.0, help="a question with no answer by then hung")
    parser.add_argument("--baseline", type=int, default=12, help="questions asked by one user alone first")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--disk-hold", type=float, default=40.0)
    parser.add_argument("--import-timeout", type=float, default=1800.0)
    parser.add_argument("--tmpfs-mb", type=int, default=512, help="size of the data directory (RAM: the full-disk ballast fills it)")
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("RAG_WEB_PORT", "8026")))
    parser.add_argument("--llm-port", type=int, default=8126)
    parser.add_argument("--model-dir", default=os.environ.get("RAG_MODEL_DIR", ""))
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    return run(parser.parse_args())


if __name__ == "__main__":
    threading.current_thread().name = "chaos"
    sys.exit(main())
