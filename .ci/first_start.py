#!/usr/bin/env python3
"""A newcomer's first start, checked: the README's commands, run as written.

    python3 .ci/first_start.py            # in a fresh clone (CI): ./var must not exist yet

1. Starts ``python3 bootstrap.py run`` (with the demo) on an empty data directory, the way
   the README says, and waits for "Ready." (the demo's questions must come back labelled).
2. From a second shell with a clean environment (``env -i HOME=… PATH=/usr/bin:/bin``)
   runs every shell command of the README's code blocks, in the order below, with the
   README's placeholders filled in from what the first start printed (the pin, the owner
   URL) or made (a token, an export): each must exit 0 and print what a person expects.
   Between them it signs in on the web page as each demo role over HTTP.
3. ``python3 bootstrap.py stop``, then checks that no process of the stack is left.

Every README command must be claimed by a step here or listed in SKIPPED with a reason:
a README edit that adds, changes or breaks a command fails this check. Stdlib only (it
runs before anything is installed, like the newcomer's ``python3``).
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# FIRST_START_WEB_PORT lets two checkouts run the check side by side (default: the README's 8000).
WEB_PORT = os.environ.get("FIRST_START_WEB_PORT", "8000")
WEB = f"http://127.0.0.1:{WEB_PORT}"
STARTED = time.monotonic()
READY_TIMEOUT = 1800  # install (a no-op after .ci/run's), model conversion, vLLM cold start, the demo
COLLECTION = "Handbook"

# README commands not run here, each with the reason (matched on the command, comments stripped).
SKIPPED = {
    r"python3 bootstrap\.py test": "the test suite: .ci/run runs it right after this check",
    r"\.venv/bin/python manage\.py audit_checkpoint": "needs the signing key, which only the signer process "
    "holds; the running stack's signer signs the head every minute (the audit page must show a signed head)",
    r"\.venv/bin/python manage\.py audit_keygen": "once, at install, for an operator-managed key: the first "
    "start already created and printed this installation's key",
    r"\.venv/bin/python manage\.py audit_rotate_key NEW_KEY": "rotation runs where the signer runs, with its key",
    r"make evaluate-answers": "a benchmark (many minutes, needs ../shared/eval); not a first-start command",
    r"\.venv/bin/python manage\.py evaluate_answers DATASET .*": "the benchmark's own command (same reason)",
    r"make evaluate": "a benchmark (SciFact ingestion, many minutes)",
    r"make bench-search": "a benchmark (100,000 chunks)",
    r"make bench-answer": "a benchmark (32 concurrent askers against vLLM)",
}


def say(message: str) -> None:
    print(f"[first-start {time.monotonic() - STARTED:7.1f}s] {message}", flush=True)


class CheckFailed(Exception):
    pass


# --- the README's commands -------------------------------------------------------------

def readme_commands() -> list[str]:
    """Every command line of the README's bash code blocks (continuations joined, comments kept)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
    return commands


def bare(command: str) -> str:
    """The command without its trailing comment, white space folded."""
    return " ".join(re.sub(r"\s+#\s.*$", "", command).split())


class Readme:
    """Hands out README commands to the steps that run them; what is left unclaimed fails."""

    def __init__(self) -> None:
        self.unclaimed = [bare(c) for c in readme_commands()]
        self.ran: list[str] = []
        self.skipped: list[tuple[str, str]] = []

    def claim(self, pattern: str) -> str:
        for command in self.unclaimed:
            if re.fullmatch(pattern, command):
                self.unclaimed.remove(command)
                self.ran.append(command)
                return command
        raise CheckFailed(f"the README has no command matching {pattern!r} any more: update the README or this check")

    def skip_listed(self) -> None:
        for pattern, reason in SKIPPED.items():
            for command in [c for c in self.unclaimed if re.fullmatch(pattern, c)]:
                self.unclaimed.remove(command)
                self.skipped.append((command, reason))


# --- the second shell ------------------------------------------------------------------

def clean_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin"}


def shell(command: str, home: Path, expect: str | None = None, timeout: float = 600) -> str:
    """Run one command line with bash in a clean environment from the project folder."""
    say(f"$ {command}")
    started = time.monotonic()
    result = subprocess.run(["env", "-i", *[f"{k}={v}" for k, v in clean_env(home).items()], "bash", "-c", command],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    for line in output.strip().splitlines()[-12:]:
        print(f"    | {line}", flush=True)
    say(f"  exit {result.returncode} in {time.monotonic() - started:.1f}s")
    if result.returncode != 0:
        raise CheckFailed(f"README command failed (exit {result.returncode}): {command}\n{output[-3000:]}")
    if expect and not re.search(expect, output):
        raise CheckFailed(f"README command printed no {expect!r}: {command}\n{output[-3000:]}")
    return output


# --- the web pages, over HTTP ------------------------------------------------------------

class Browser:
    """A person at a browser: cookies, the CSRF token from the form, plain HTTP."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  urllib.request.ProxyHandler({}))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(WEB + path, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def post(self, path: str, fields: dict[str, str | list[str]]) -> tuple[int, str]:
        status, page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if not token:
            raise CheckFailed(f"no form with a CSRF token at {path} (HTTP {status})")
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token.group(1)}, doseq=True).encode()
        request = urllib.request.Request(WEB + path, data=data, headers={"Referer": WEB + path})
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def sign_in(self, username: str, password: str) -> None:
        status, page = self.post("/login/", {"username": username, "password": password})
        if status != 200 or 'name="password"' in page and "/logout/" not in page:
            raise CheckFailed(f"signing in as {username} failed (HTTP {status})")


def check_pages(passwords: dict[str, str]) -> dict[str, Browser]:
    """Each demo role signs in and loads the ask, collections and audit pages."""
    expected = {  # what each role must be able to open; the others must refuse cleanly (never a 500)
        "staff.demo": {"/": 200, "/collections/": 200, "/audit/": 403},
        "admin.demo": {"/": 200, "/collections/": 200, "/audit/": 403},
        "compliance.demo": {"/audit/": 200},
    }
    browsers = {}
    for username, pages in expected.items():
        browser = Browser()
        browser.sign_in(username, passwords[username])
        for path in ("/", "/collections/", "/audit/"):
            status, page = browser.get(path)
            say(f"  {username:<16} GET {path:<14} HTTP {status}")
            if status >= 500 or (path in pages and status != pages[path]):
                raise CheckFailed(f"{username}: {path} answered HTTP {status}, expected {pages.get(path, '< 500')}")
            if username == "compliance.demo" and path == "/audit/":
                check_integrity_box(page)
        browsers[username] = browser
    return browsers


def check_integrity_box(page: str) -> None:
    box = re.search(r'<section class="card" aria-labelledby="integrity-heading">(.*?)</section>', page, re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", box.group(1) if box else "")).split())
    say(f"  integrity box: {text[:200]}")
    if not box or "outcome-success" not in box.group(1) or re.search(r"(?i)does not verify|tamper", text):
        raise CheckFailed(f"the audit page's integrity box does not say the trail verifies: {text!r}")


def mint_token(browser: Browser, password: str, scopes: list[str]) -> str:
    status, page = browser.post("/account/tokens/", {"name": "first start", "days": "7", "scopes": scopes,
                                                     "password": password})
    secret = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', page)
    if status != 200 or not secret:
        raise CheckFailed(f"no token minted at /account/tokens/ (HTTP {status})")
    return secret.group(1)


def api(token: str, path: str) -> object:
    request = urllib.request.Request(WEB + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=120) as response:
        body = response.read()
    return body if path.startswith("/api/v1/audit/export") else json.loads(body)


# --- the stack -------------------------------------------------------------------------

def start_stack(log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAG_", "LLM_", "DJANGO_")) and k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    if WEB_PORT != "8000":
        env["RAG_WEB_PORT"] = WEB_PORT
    say(f"$ python3 bootstrap.py run   (log: {log})")
    process = subprocess.Popen([sys.executable, "bootstrap.py", "run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    threading.Thread(target=process.wait, daemon=True).start()  # reaped when it exits, as a shell would
    return process


def wait_ready(process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if re.search(r"\] Ready\. Open ", text):
            return text
        if process.poll() is not None:
            raise CheckFailed(f"python3 bootstrap.py run exited with {process.returncode} before it was ready:\n"
                              + "\n".join(text.splitlines()[-40:]))
        time.sleep(2)
    raise CheckFailed("python3 bootstrap.py run was not ready in time:\n" + "\n".join(log.read_text().splitlines()[-40:]))


def check_demo(text: str) -> None:
    questions = text.count("\nQ: ")
    labelled = len(re.findall(r"^  (Verified answer: |Quotation \(the model's answer was not verified\): |"
                              r"Not stated in your documents)", text, re.M))
    events = len(re.findall(r"^  Audit event #\d+ ", text, re.M))
    say(f"demo: {questions} questions, {labelled} labelled answers, {events} audit events")
    if questions < 1 or labelled != questions or events != questions or "  ERROR: " in text:
        raise CheckFailed("the demo's questions did not all come back labelled with an audit event")


def stack_processes() -> list[str]:
    """Processes still running from this checkout (its .venv, its data directory)."""
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(ROOT / ".venv") in cmdline or str(ROOT / "var") in cmdline:
            left.append(f"{proc.name}: {cmdline[:160]}")
    return left


def second_shell(readme: Readme, home: Path, stack_log: str) -> None:
    pin = (ROOT / "var" / "keys" / "audit-signing.pub").read_text().strip()
    if pin not in stack_log:
        raise CheckFailed("the first start did not print the public key to pin")
    owner_url = re.search(r"RAG_DATABASE_OWNER_URL=(\S+?)\)", stack_log)
    if not owner_url:
        raise CheckFailed("the first start did not print the owner URL for owner-only commands")

    output = shell(readme.claim(r"\.venv/bin/python manage\.py create_demo_users"), home, expect="compliance.demo")
    passwords = dict(re.findall(r"user (\S+)\s+password (\S+)", output))
    shell(readme.claim(rf"\.venv/bin/python manage\.py create_collection {COLLECTION} .*"), home)
    shell(readme.claim(rf"\.venv/bin/python manage\.py ingest .+ --collection {COLLECTION} --wait"),
          home, expect="indexed")
    shell(readme.claim(r"\.venv/bin/python manage\.py ask .+"), home,
          expect=r"(Verified answer|Quotation|Not stated).*\n(.*\n)*  Audit event #\d+")
    shell(readme.claim(r"\.venv/bin/python manage\.py audit_verify --public-key var/keys/audit-signing\.pub"), home,
          expect="audit trail verifies")

    say("Signing in on the web page as each demo role")
    browsers = check_pages(passwords)
    admin_token = mint_token(browsers["admin.demo"], passwords["admin.demo"], ["ask", "ingest"])
    audit_token = mint_token(browsers["compliance.demo"], passwords["compliance.demo"], ["audit"])
    collection = next(c for c in api(admin_token, "/api/v1/collections") if c["name"] == COLLECTION)
    (ROOT / "audit-export.zip").write_bytes(api(audit_token, "/api/v1/audit/export"))

    token_line = readme.claim(r"TOKEN=rag_…")
    ask = readme.claim(r"curl -s -H \"Authorization: Bearer \$TOKEN\" -H .* http://127\.0\.0\.1:8000/api/v1/ask")
    upload = readme.claim(r"curl -s -H \"Authorization: Bearer \$TOKEN\" -F file=@policy\.pdf .*/collections/1/documents")
    prelude = token_line.replace("rag_…", admin_token) + "\n"
    ask, upload = (c.replace("127.0.0.1:8000", f"127.0.0.1:{WEB_PORT}") for c in (ask, upload))
    shell(prelude + ask, home, expect=r'"answer"')
    sample = "sample_corpus/records-retention-schedule.pdf"
    uploaded = shell(prelude + upload.replace("policy.pdf", sample)
                     .replace("/collections/1/", f"/collections/{collection['id']}/"), home, expect=r'"status"')
    document_id = json.loads(uploaded)[0]["document"]["id"]

    prelude = readme.claim(r"export RAG_AUDIT_PIN=<public key or sha256:fingerprint>").replace(
        "<public key or sha256:fingerprint>", pin) + "\n"
    verify = readme.claim(r"\.venv/bin/python manage\.py audit_verify")
    shell(prelude + verify, home, expect="audit trail verifies")
    shell(readme.claim(r"\.venv/bin/python manage\.py audit_verify --export audit-export\.zip --public-key <pin>")
          .replace("<pin>", pin), home, expect="export verifies")
    attest = readme.claim(r"\.venv/bin/python manage\.py attest \[--verify\]")
    shell(attest.replace(" [--verify]", ""), home)
    shell(attest.replace("[--verify]", "--verify"), home)
    shell(readme.claim(r"RAG_DATABASE_OWNER_URL=\.\.\. \.venv/bin/python manage\.py audit_expire")
          .replace("=...", "=" + owner_url.group(1)), home)
    shell(readme.claim(r'\.venv/bin/python manage\.py audit_legal_hold place .*'), home)
    shell(readme.claim(r'\.venv/bin/python manage\.py erase_document ID --reason ".+" \[--by officer\]')
          .replace(" ID ", f" {document_id} ").replace("[--by officer]", "--by compliance.demo"), home)
    shell(readme.claim(r'\.venv/bin/python manage\.py erase_user USERNAME --reason ".+" \[--by officer\]')
          .replace("USERNAME", "staff.demo").replace("[--by officer]", "--by compliance.demo"), home)
    shell(readme.claim(r"\.venv/bin/python manage\.py audit_apply_erasures"), home)
    shell(prelude + verify, home, expect="audit trail verifies")  # erasures keep the trail verifiable
    status, page = browsers["compliance.demo"].get("/audit/")
    check_integrity_box(page)


def main() -> int:
    if (ROOT / "var").exists() and any((ROOT / "var").iterdir()):
        print(f"first-start check: {ROOT / 'var'} exists already; run this in a fresh clone (CI does).")
        return 2
    readme = Readme()
    readme.claim(r"python3 bootstrap\.py run")
    readme.skip_listed()
    work = Path(tempfile.mkdtemp(prefix="rag-first-start-"))
    home = work / "home"
    home.mkdir()
    log = work / "run.log"
    process = start_stack(log)
    code = 1
    try:
        stack_log = wait_ready(process, log)
        say("The stack is ready.")
        check_demo(stack_log)
        second_shell(readme, home, stack_log)
        if readme.unclaimed:
            raise CheckFailed("README commands this check neither runs nor skips with a reason:\n  "
                              + "\n  ".join(readme.unclaimed))
        shell("python3 bootstrap.py stop", home, expect="Stack stopped")
        process.wait(120)
        time.sleep(2)
        if left := stack_processes():
            raise CheckFailed("processes left running after python3 bootstrap.py stop:\n  " + "\n  ".join(left))
        code = 0
    except CheckFailed as failure:
        say(f"FAILED: {failure}")
    except subprocess.TimeoutExpired as timeout:
        say(f"FAILED: timed out: {timeout}")
    finally:
        (ROOT / "audit-export.zip").unlink(missing_ok=True)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        print(f"\nREADME commands run ({len(readme.ran)}):")
        for command in readme.ran:
            print(f"  {command}")
        print(f"README commands skipped ({len(readme.skipped)}):")
        for command, reason in readme.skipped:
            print(f"  {command}\n      ({reason})")
        say("first start " + ("passed" if code == 0 else f"FAILED (stack log: {log})"))
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
