"""A model server that stalls mid-answer ends the question within LLM_ANSWER_DEADLINE_SECONDS
(issue 26: an engine killed behind a live API server hung a question until the web server
killed its worker, and no audit event was written).

The stalling server is a loopback HTTP server speaking the OpenAI streaming format: it sends
one token, then nothing, holding the connection open, which is what a vLLM API server whose
engine died looks like to the client. The read timeout is set far above the deadline, so only
the deadline can end the question in time."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.answering.llm import LLMUnavailable, chat_stream
from apps.answering.models import AnswerKind
from apps.answering.services import ask_question
from apps.audit.models import AuditEvent, Outcome
from apps.ingestion.services import document_ingest, document_upload

FINANCE = (b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team. "
           b"Smaller payments need one approval from the budget owner.\n")
QUESTION = "How many approvals does a payment above 10,000 EUR need?"


class _Stalls(BaseHTTPRequestHandler):
    released = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):  # /v1/models and friends: nothing useful, as a dying server might answer
        self.send_response(503)
        self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.endswith("/chat/completions"):
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "stalling",
                 "choices": [{"index": 0, "delta": {"content": "Two"}, "finish_reason": None}]}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()
        self.released.wait(60)  # then silence, connection open


@pytest.fixture
def stalling_server(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stalls)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LLM_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.LLM_TIMEOUT_SECONDS = 60.0
    settings.LLM_ANSWER_DEADLINE_SECONDS = 2.0
    yield
    _Stalls.released.set()
    server.shutdown()
    server.server_close()
    _Stalls.released.clear()


def test_a_stalled_stream_ends_at_the_deadline_with_what_was_said(stalling_server):
    pieces = []
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="did not finish its answer within 2 seconds"):
        for text in chat_stream([{"role": "user", "content": "How many?"}]):
            pieces.append(text)
    assert pieces == ["Two"]
    assert time.monotonic() - started < 15  # the 60 s read timeout did not decide it


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_question_to_a_stalled_model_gets_a_labelled_quotation_and_one_event(
        stalling_server, settings, collection, corpus_admin, member):
    settings.LLM_PROMPT_PROFILE = "small"
    upload = document_upload(collection=collection, uploaded_by=corpus_admin, name="payments.md",
                             content=io.BytesIO(FINANCE), size=len(FINANCE))
    document_ingest(document_id=upload.document.id)
    before = AuditEvent.objects.filter(event_type="question.asked").count()
    started = time.monotonic()
    result = ask_question(user=member, question=QUESTION)
    assert time.monotonic() - started < 30
    assert result.answer_kind == AnswerKind.QUOTATION and "two approvals" in result.answer
    assert result.outcome == Outcome.LLM_ERROR and "within 2 seconds" in result.error
    assert AuditEvent.objects.filter(event_type="question.asked").count() == before + 1
