"""User journeys in a real browser: Debian's Chromium driven by Playwright, against the live
server on 127.0.0.1 and a real Celery worker. Screenshots go to test-artifacts/screenshots/.

Skipped with a reason when /usr/bin/chromium is absent (a user without root; bootstrap.py
installs it when it runs as root, as in CI). Playwright never downloads a browser here."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from tests.factories import PASSWORD, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
POLICY = b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team.\n"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_corpus"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium; "
                       "bootstrap.py does it when run as root)"),
    pytest.mark.slow,
]
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


@pytest.fixture
def chromium():
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are
    # plain synchronous set-up, so allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def new_page(browser, live_server, viewport, outside_requests):
    context = browser.new_context(viewport=viewport, base_url=live_server.url)
    page = context.new_page()
    # Any request to another origin is a failure (CSP should stop it; this proves it).
    page.on("request", lambda r: outside_requests.append(r.url) if not r.url.startswith(live_server.url)
            and not r.url.startswith("data:") else None)
    return page


def sign_in(page, username):
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_corpus_admin_and_outsider_journeys(chromium, live_server, worker, tmp_path, viewport):
    from playwright.sync_api import expect

    width = "laptop" if viewport is LAPTOP else "phone"
    readers = Group.objects.create(name="finance-readers")
    UserFactory(username="admin", groups=["corpus_admin"])
    member = UserFactory(username="reader", groups=["staff"])
    member.groups.add(readers)
    UserFactory(username="outsider", groups=["staff"])
    outside: list[str] = []

    # Corpus admin: signs in, creates a collection, uploads, watches it reach indexed, grants read.
    page = new_page(chromium, live_server, viewport, outside)
    sign_in(page, "admin")
    page.goto("/collections/new/")
    page.get_by_label("Name").fill("Finance policies")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Finance policies")).to_be_visible()
    policy = tmp_path / "payments.md"
    policy.write_bytes(POLICY)
    page.get_by_label(re.compile("Add files")).set_input_files(str(policy))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("payments.md: queued for indexing.")).to_be_visible()
    shot(page, f"admin-upload-{width}")
    expect(page.locator(".status-indexed")).to_be_visible(timeout=120_000)  # the page refreshes itself
    page.get_by_label("Group", exact=True).select_option(label="finance-readers")
    page.get_by_label("Access", exact=True).select_option("read")
    page.get_by_role("button", name="Grant", exact=True).click()
    expect(page.get_by_text("Group finance-readers now has read access.")).to_be_visible()
    shot(page, f"admin-grants-{width}")
    # An error shows next to the form, where the person is looking.
    page.get_by_label("User name", exact=True).fill("nobody")
    page.get_by_label("Group", exact=True).select_option(index=0)
    page.get_by_role("button", name="Grant", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("No user named")

    # The member sees it; the outsider sees it nowhere.
    reader = new_page(chromium, live_server, viewport, outside)
    sign_in(reader, "reader")
    reader.goto("/collections/")
    expect(reader.get_by_text("Finance policies")).to_be_visible()
    outsider = new_page(chromium, live_server, viewport, outside)
    sign_in(outsider, "outsider")
    from apps.corpus.models import Chunk, Collection

    collection = Collection.objects.get(name="Finance policies")
    chunk = Chunk.objects.filter(collection=collection).first()
    for url in ("/", "/collections/", "/history/", f"/collections/{collection.id}/", f"/collections/passages/{chunk.id}/"):
        response = outsider.goto(url)
        assert "Finance policies" not in outsider.content() and "two approvals" not in outsider.content(), url
        assert response.status in (200, 404), url
    shot(outsider, f"outsider-collections-{width}")
    assert outside == []


# Every form control on a page has an accessible name (label, aria-label(ledby), title or text).
UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll("input, select, textarea, button"))
  .filter(e => e.type !== "hidden")
  .filter(e => {
    const text = s => (s || "").trim();
    if (text(e.getAttribute("aria-label")) || text(e.title)) return false;
    const by = e.getAttribute("aria-labelledby");
    if (by && by.split(/\\s+/).some(id => text((document.getElementById(id) || {}).textContent))) return false;
    if (e.labels && Array.from(e.labels).some(l => text(l.textContent))) return false;
    return !(e.tagName === "BUTTON" && text(e.textContent));
  })
  .map(e => e.outerHTML.slice(0, 120))"""

# Records what the answer region shows at every change while the answer streams in.
WATCH_ANSWER = """() => {
  window.answerSamples = [];
  const box = document.getElementById("stream-answer"), text = document.getElementById("stream-text");
  new MutationObserver(() => window.answerSamples.push({
    length: text.textContent.length, busy: box.getAttribute("aria-busy"),
    label: document.getElementById("stream-label").textContent,
    status: document.getElementById("stream-status").textContent,
  })).observe(box, {childList: true, subtree: true, characterData: true});
}"""


def assert_accessible(page):
    assert page.evaluate(UNLABELLED_CONTROLS) == [], page.url


def ask(page, question):
    """Asks on the ask page; returns what the answer region showed while the answer streamed."""
    from playwright.sync_api import expect

    page.evaluate(WATCH_ANSWER)
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#stream-status")).to_contain_text("outcome: answered", timeout=120_000)
    expect(page.locator("#stream-answer")).to_have_attribute("aria-busy", "false")
    return page.evaluate("window.answerSamples")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_staff_and_compliance_officer_journeys(chromium, live_server, llm, settings, tmp_path, viewport):
    """Staff ask, watch the answer stream in, open the cited page of a PDF and follow up; the
    compliance officer finds that question in the audit trail, exports it, sees it verified."""
    import io
    import zipfile

    from playwright.sync_api import expect

    from apps.answering.models import AskedQuestion
    from apps.audit.checkpoints import audit_checkpoint_create
    from apps.audit.exports import verify_export
    from apps.ingestion.services import document_ingest, document_upload
    from tests.factories import CollectionFactory

    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    width = "laptop" if viewport is LAPTOP else "phone"
    admin = UserFactory(username="admin", groups=["corpus_admin"])
    staff = UserFactory(username="staff", groups=["staff"])
    UserFactory(username="compliance", groups=["compliance_officer"])
    collection = CollectionFactory(name="Records management", created_by=admin)
    collection.reader_users.add(staff)
    pdf = (SAMPLES / "records-retention-schedule.pdf").read_bytes()  # two pages; financial records on page 2
    upload = document_upload(collection=collection, uploaded_by=admin, name="records-retention-schedule.pdf",
                             content=io.BytesIO(pdf), size=len(pdf))
    document_ingest(document_id=upload.document.id)  # the admin journey covers the worker path
    outside: list[str] = []
    question = "How long are financial transaction records kept?"

    # Staff: asks and watches the answer stream in.
    page = new_page(chromium, live_server, viewport, outside)
    sign_in(page, "staff")
    page.goto("/")
    assert_accessible(page)
    expect(page.locator("#stream-answer")).to_have_attribute("aria-live", "polite")
    # A blank question is refused next to the form, where the person is looking.
    page.get_by_label("Your question").fill("   ")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("required")
    expect(page.get_by_label("Your question")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#stream-answer")).to_be_hidden()
    samples = ask(page, question)
    expect(page.get_by_role("alert")).to_have_count(0)
    answer = page.locator("#stream-text").inner_text().strip()
    streaming = [s for s in samples if s["busy"] == "true" and s["status"] == "Answering…" and s["length"]]
    # Several partial answers were on screen, marked busy, before the finished one.
    assert len({s["length"] for s in streaming}) >= 3 and min(s["length"] for s in streaming) < len(answer), samples
    assert answer and "Not stated" not in answer
    # What is on screen is labelled: a verified answer or a quotation, never an unmarked draft.
    expect(page.locator("#stream-label")).to_contain_text(re.compile(r"^(Verified answer|Quotation from your documents)"))
    drafts = [s for s in streaming if s["length"]]
    assert all(s["label"].startswith("Draft, not yet verified") for s in drafts), drafts
    sources = page.locator("#stream-sources")
    expect(sources).to_contain_text("records-retention-schedule.pdf, page 2")
    shot(page, f"staff-answer-{width}")

    # Opens the cited source on page 2: the passage in its document, at the right page.
    # The question is in "Your recent questions" at once, without reloading the page.
    expect(page.get_by_role("complementary").locator(".history-list li").first).to_contain_text(question)
    cited = page.locator("#stream-sources li").filter(has_text="(cited)").filter(has_text="page 2")
    cited.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="records-retention-schedule.pdf")).to_be_visible()
    expect(page.locator("main p.muted").first).to_contain_text("page 2")
    passage = page.locator("#cited")
    expect(passage).to_contain_text("Page 2")
    expect(passage).to_contain_text("Financial transaction records")
    expect(passage).to_have_attribute("aria-current", "true")
    assert_accessible(page)
    shot(page, f"staff-passage-{width}")

    # Follows up from the history beside the ask page: a second answer, searched with the first question.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Ask").click()
    page.get_by_role("complementary").get_by_role("link", name="follow up").first.click()
    expect(page.locator("#follow-up-note")).to_contain_text(question)
    assert_accessible(page)
    ask(page, "After which event does that period start?")
    expect(page.locator("#stream-text")).not_to_be_empty()
    shot(page, f"staff-follow-up-{width}")
    first, second = AskedQuestion.objects.filter(user=staff).order_by("id")
    assert second.follow_up_of_id == first.id and second.search_query.startswith(question)

    # Compliance officer: finds that question in the audit trail, opens, exports, sees it verified.
    audit_checkpoint_create()  # what Celery beat does every few minutes
    officer = new_page(chromium, live_server, viewport, outside)
    sign_in(officer, "compliance")
    officer.get_by_role("link", name="Audit trail").click()
    assert_accessible(officer)
    officer.get_by_label("Event type").select_option(label="Question asked")
    officer.get_by_label("User name").fill("staff")
    officer.get_by_label("Question contains").fill("financial transaction")
    officer.get_by_role("button", name="Filter").click()
    rows = officer.get_by_role("table", name="Events, newest first").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(question)
    shot(officer, f"compliance-filtered-{width}")
    rows.get_by_role("link", name=re.compile(r"^Event \d+$")).click()
    expect(officer.get_by_role("heading", name=re.compile(r"^Audit event #\d+$"))).to_be_visible()
    expect(officer.get_by_role("row", name=re.compile("^Question"))).to_contain_text(question)
    expect(officer.get_by_role("row", name=re.compile("^Session, IP"))).to_contain_text("127.0.0.1")
    expect(officer.locator("#integrity-status")).to_contain_text("Chain verified")
    assert_accessible(officer)
    expect(officer.get_by_text("signature verifies")).to_be_visible()
    with officer.expect_download() as download:
        officer.get_by_role("link", name="Export this event").click()
    data = Path(download.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert question in archive.read("events.csv").decode()
        assert len(archive.read("events.jsonl").decode().splitlines()) == 1
    assert verify_export(data, trusted_public_key=os.environ["RAG_AUDIT_PIN"]) == []
    shot(officer, f"compliance-detail-{width}")
    assert outside == []
