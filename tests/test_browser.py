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
