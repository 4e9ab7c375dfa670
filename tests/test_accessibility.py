"""Every main page, for each role, read the way a screen reader reads it.

Fast: Django's test client renders the pages (no browser; tests/test_browser.py looks at them
at a laptop and a phone width), lxml parses them, and :func:`problems` lists what a screen
reader user would miss: a language, the viewport for phones, one <main>
landmark and one <h1>, a name for every form control and button, a text alternative for
every image, references that point somewhere, and form errors that are announced and sit
where the person is looking (next to their field, or at the top of the form).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from lxml import html

from apps.answering.models import AskedQuestion
from apps.api.services import api_token_create
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Chunk, Document
from apps.corpus.services import collection_grant
from tests.factories import PASSWORD, UserFactory

LOOPBACK = ["127.0.0.1", "127.0.0.2", "::1", "localhost"]  # the attestation page's self-test
UNNAMED_INPUT_TYPES = {"hidden", "submit", "button", "reset", "image"}
_CLASS = "contains(concat(' ', normalize-space(@class), ' '), ' {} ')"
ERRORS = (f"//*[{_CLASS.format('error-box')} or {_CLASS.format('errorlist')}]"
          f"|//ul[{_CLASS.format('messages')}]/li[{_CLASS.format('error')}]")  # page messages of level error


# --- the checks -------------------------------------------------------------------------------
def _text(element) -> str:
    return " ".join(element.text_content().split())


def _visible(element) -> bool:
    return not any(node.get("hidden") is not None for node in [element, *element.iterancestors()])


def _control_name(doc, control) -> str:
    if control.get("aria-label", "").strip():
        return control.get("aria-label")
    if control.get("aria-labelledby"):
        return " ".join(_text(doc.get_element_by_id(i)) for i in control.get("aria-labelledby").split()
                        if doc.xpath(f'//*[@id="{i}"]'))
    control_id = control.get("id")
    if control_id:
        labels = doc.xpath(f'//label[@for="{control_id}"]')
        if labels:
            return " ".join(_text(label) for label in labels)
    wrapping = next((a for a in control.iterancestors() if a.tag == "label"), None)
    return _text(wrapping) if wrapping is not None else ""


def _announced(doc, element) -> bool:
    """role=alert / a live region on it or around it, or a control that names it as its description."""
    for node in [element, *element.iterancestors()]:
        if node.get("role") == "alert" or node.get("aria-live") in {"assertive", "polite"}:
            return True
    element_id = element.get("id")
    return bool(element_id and doc.xpath(f'//*[contains(concat(" ", @aria-describedby, " "), " {element_id} ")]'))


def _where_the_person_looks(doc, error) -> bool:
    """Next to a field (sharing its parent with a control, or described by one), or above the
    form's first control (a summary at the top of the form)."""
    form = next((a for a in error.iterancestors() if a.tag == "form"), None)
    controls = form.xpath(".//input[not(@type='hidden')]|.//select|.//textarea") if form is not None else []
    if form is None:  # a summary above the form it is about (the sign-in page), or a page message
        following = error.xpath("following::form[1]")
        if not following:
            return True
        controls = following[0].xpath(".//input[not(@type='hidden')]|.//select|.//textarea")
        return True if not controls else error in controls[0].xpath("preceding::*")
    if any(control.getparent() is error.getparent() for control in controls):
        return True
    element_id = error.get("id")
    if element_id and any(element_id in (c.get("aria-describedby") or "").split() for c in controls):
        return True
    return bool(controls) and error in controls[0].xpath("preceding::*")


def problems(content: bytes, *, form_errors_expected: bool = False) -> list[str]:
    doc = html.document_fromstring(content)
    found = []
    if not doc.get("lang"):
        found.append("<html> has no lang")
    viewport = doc.xpath('//meta[@name="viewport"]/@content')
    if not viewport or "width=device-width" not in viewport[0]:
        found.append("no viewport meta for phone widths")
    if len(doc.xpath('//main|//*[@role="main"]')) != 1:
        found.append(f"{len(doc.xpath('//main'))} <main> landmarks, expected 1")
    h1 = doc.xpath("//h1")
    if len(h1) != 1:
        found.append(f"{len(h1)} <h1> elements, expected 1: {[_text(h) for h in h1]}")
    ids = doc.xpath("//@id")
    found += [f"duplicate id {i!r}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for control in doc.xpath("//input|//select|//textarea"):
        if control.tag == "input" and control.get("type", "text").lower() in UNNAMED_INPUT_TYPES:
            continue
        if not _control_name(doc, control).strip():
            found.append(f"<{control.tag} name={control.get('name')!r} id={control.get('id')!r}> has no label")
    for label in doc.xpath("//label[@for]"):
        if not doc.xpath(f'//input[@id="{label.get("for")}"]|//select[@id="{label.get("for")}"]'
                         f'|//textarea[@id="{label.get("for")}"]'):
            found.append(f"<label for={label.get('for')!r}> ({_text(label)[:40]!r}) labels no control")
    for button in doc.xpath('//button|//input[@type="submit" or @type="button" or @type="reset"]'):
        if not (_text(button) or button.get("aria-label") or button.get("value")):
            found.append(f"button {html.tostring(button)[:80]!r} has no name")
    for image in doc.xpath('//img|//input[@type="image"]'):
        if image.get("alt") is None:
            found.append(f"image {image.get('src')!r} has no alt")
    for attribute in ("aria-describedby", "aria-labelledby", "aria-controls"):
        for element in doc.xpath(f"//*[@{attribute}]"):
            for target in element.get(attribute).split():
                if not doc.xpath(f'//*[@id="{target}"]'):
                    found.append(f"{attribute}={target!r} on <{element.tag}> points at nothing")
    form_errors = [e for e in doc.xpath(ERRORS) if _visible(e) and _text(e) and _about_a_form(e)]
    for error in form_errors:
        if not _announced(doc, error):
            found.append(f"error {_text(error)[:60]!r} is not announced (role=alert or aria-describedby)")
        if not _where_the_person_looks(doc, error):
            found.append(f"error {_text(error)[:60]!r} is neither next to its field nor at the top of the form")
    for control in doc.xpath('//*[@aria-invalid="true"]'):
        described = [t for t in (control.get("aria-describedby") or "").split() if doc.xpath(f'//*[@id="{t}"]')]
        if not any(_text(doc.get_element_by_id(t)) for t in described):
            found.append(f"invalid <{control.tag} name={control.get('name')!r}> is not described by its error")
    if form_errors_expected and not form_errors:
        found.append("the form was refused but no error is shown")
    return found


def _about_a_form(error) -> bool:
    """Inside a form, a page message (li.error), or a summary in the same box as a form.
    Not: a past question's error in the history, a document's failure reason in a table."""
    return bool(error.xpath("ancestor::form") or error.tag == "li" or error.getparent().xpath(".//form"))


def test_the_checker_catches_what_it_claims_to():
    bad = (b'<html><head></head><body><h1>A</h1><h1>B</h1><form><input name="q"><img src="x.png">'
           b'<button></button><p class="error-box">Wrong</p><input name="r" aria-invalid="true">'
           b'<label for="gone">Gone</label></form></body></html>')
    found = " | ".join(problems(bad))
    for expected in ("no lang", "viewport", "0 <main>", "2 <h1>", "name='q'", "no alt", "has no name",
                     "not announced", "invalid <input name='r'>", "labels no control"):
        assert expected in found, (expected, found)
    good = (b'<html lang="en"><head><meta name="viewport" content="width=device-width"></head><body><main>'
            b'<h1>A</h1><form><p class="error-box" role="alert">Wrong</p><label for="q">Q</label>'
            b'<input id="q" name="q"><label>R <input name="r"></label><img src="x.png" alt="">'
            b'<button aria-label="Go"></button></form></main></body></html>')
    assert problems(good) == []
    far = good.replace(b'<p class="error-box" role="alert">Wrong</p>', b'').replace(
        b'</form>', b'<div><p class="error-box" role="alert">Wrong</p></div></form>')
    assert problems(far) == ["error 'Wrong' is neither next to its field nor at the top of the form"]


# --- the pages --------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def quick_passwords(settings):
    """Argon2 is what production hashes with (tests/test_security.py); here it would only cost
    seconds per page for the four people signed in."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def site(db, corpus_admin, member, outsider, compliance_officer, collection, settings, tmp_path):
    """One collection with an indexed document (two passages) and a failed one, a grant, a
    question in the trail that retrieved a passage, and an API token per person."""
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    readers = Group.objects.create(name="finance-readers")
    collection_grant(collection=collection, group=readers, level="read", granted_by=corpus_admin)
    indexed = Document.objects.create(collection=collection, title="records-schedule.pdf", file="x/records.pdf",
                                      sha256="a" * 64, size_bytes=10, status=Document.Status.INDEXED, chunk_count=2,
                                      page_count=2, uploaded_by=corpus_admin)
    Document.objects.create(collection=collection, title="scan.tiff", file="x/scan.tiff", sha256="b" * 64,
                            size_bytes=10, status=Document.Status.FAILED, failure_reason="OCR is not installed",
                            uploaded_by=corpus_admin)
    vector = [1.0] + [0.0] * 383
    chunks = [Chunk.objects.create(document=indexed, collection=collection, ordinal=n, page_number=n + 1,
                                   text=f"Passage {n}: accounts are kept for 7 years.", embedding=vector)
              for n in range(2)]
    audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member,
                 payload={"question": "How long are accounts kept?", "answer": "7 years [1].",
                          "collections_searched": [collection.id],
                          "retrieved": [{"n": 1, "chunk_id": chunks[1].id, "document_id": indexed.id, "score": 0.91, "cited": True, "page": 2}]})
    asked = AskedQuestion.objects.create(
        user=member, question="How long are accounts kept?", search_query="How long are accounts kept?",
        answer="7 years [1].", outcome="answered", audit_sequence=_question_event(),
        citations=[{"n": 1, "chunk_id": chunks[1].id, "document_title": indexed.title, "page": 2, "cited": True}])
    AskedQuestion.objects.create(user=member, question="And before 2020?", search_query="And before 2020?",
                                 outcome="llm_error", error="The model did not answer in time.")
    for user in (member, corpus_admin, compliance_officer):
        api_token_create(user=user, name="nightly report", days=30)
    return {"collection": collection, "chunk": chunks[1], "asked": asked, "people": {
        "staff": member, "corpus_admin": corpus_admin, "compliance_officer": compliance_officer, "no_grant": outsider}}


def _question_event():
    from apps.audit.models import AuditEvent

    return AuditEvent.objects.get(event_type=EventType.QUESTION_ASKED).sequence


# (role, page, how to get it); None as role: not signed in.
PAGES = [
    (None, "sign-in", lambda c, s: c.get(reverse("login"))),
    ("staff", "ask", lambda c, s: c.get(reverse("answering:ask"))),
    ("staff", "ask, follow-up", lambda c, s: c.get(reverse("answering:ask"), {"follow_up": s["asked"].id})),
    ("staff", "history", lambda c, s: c.get(reverse("answering:history"))),
    ("staff", "passage", lambda c, s: c.get(reverse("corpus:passage_detail", args=[s["chunk"].id]))),
    ("staff", "collections", lambda c, s: c.get(reverse("corpus:collection_list"))),
    ("staff", "collection", lambda c, s: c.get(reverse("corpus:collection_detail", args=[s["collection"].id]))),
    ("staff", "tokens", lambda c, s: c.get(reverse("api_tokens"))),
    ("staff", "not allowed", lambda c, s: c.get(reverse("audit:event_list"))),
    ("no_grant", "ask, nothing readable", lambda c, s: c.get(reverse("answering:ask"))),
    ("no_grant", "ask, answered without JavaScript",
     lambda c, s: c.post(reverse("answering:ask"), {"question": "How long are accounts kept?"})),
    ("corpus_admin", "collections", lambda c, s: c.get(reverse("corpus:collection_list"))),
    ("corpus_admin", "new collection", lambda c, s: c.get(reverse("corpus:collection_new"))),
    ("corpus_admin", "collection with grants", lambda c, s: c.get(reverse("corpus:collection_detail", args=[s["collection"].id]))),
    ("corpus_admin", "passage", lambda c, s: c.get(reverse("corpus:passage_detail", args=[s["chunk"].id]))),
    ("corpus_admin", "tokens", lambda c, s: c.get(reverse("api_tokens"))),
    ("corpus_admin", "new token shown once", lambda c, s: c.post(reverse("api_tokens"), {"name": "sync", "days": "30", "password": PASSWORD})),
    ("compliance_officer", "audit trail", lambda c, s: c.get(reverse("audit:event_list"))),
    ("compliance_officer", "audit trail, filtered",
     lambda c, s: c.get(reverse("audit:event_list"), {"event_type": "question.asked", "q": "accounts"})),
    ("compliance_officer", "audit event", lambda c, s: c.get(reverse("audit:event_detail", args=[_question_event()]))),
    ("compliance_officer", "attestation", lambda c, s: c.get(reverse("audit:attestation"))),
    ("compliance_officer", "tokens", lambda c, s: c.get(reverse("api_tokens"))),
]

# Refused forms: the error must be announced and shown next to the field or atop the form.
REFUSED_FORMS = [
    (None, "sign-in, wrong password", lambda c, s: c.post(reverse("login"), {"username": "member", "password": "nope"})),
    ("staff", "ask, empty question", lambda c, s: c.post(reverse("answering:ask"), {"question": "  "})),
    ("staff", "token, bad duration", lambda c, s: c.post(reverse("api_tokens"), {"name": "x", "days": "9999", "password": PASSWORD})),
    ("corpus_admin", "new collection, no name", lambda c, s: c.post(reverse("corpus:collection_new"), {"name": ""})),
    ("corpus_admin", "grant to nobody",
     lambda c, s: c.post(reverse("corpus:grant_add", args=[s["collection"].id]), {"username": "no.such.user", "level": "read"})),
    ("corpus_admin", "grant without anyone",
     lambda c, s: c.post(reverse("corpus:grant_add", args=[s["collection"].id]), {"level": "read"})),
    ("corpus_admin", "upload refused (message)", lambda c, s: _refused_upload(c, s)),
]


def _refused_upload(client, site):
    from django.core.files.uploadedfile import SimpleUploadedFile

    empty = SimpleUploadedFile("empty.txt", b"", content_type="text/plain")
    return client.post(reverse("ingestion:document_upload", args=[site["collection"].id]), {"files": [empty]},
                       follow=True)


def _open(client, site, role, fetch):
    if role is not None:
        assert client.login(username=site["people"][role].username, password=PASSWORD)
    response = fetch(client, site)
    assert response.status_code in {200, 400, 403}, (response.status_code, response.content[:300])
    return response


@pytest.mark.django_db
@pytest.mark.allow_hosts(LOOPBACK)
@pytest.mark.parametrize("role, page_name, fetch", PAGES, ids=[f"{r or 'anonymous'}: {p}" for r, p, _ in PAGES])
def test_page_is_usable_with_a_screen_reader(client, site, role, page_name, fetch):
    response = _open(client, site, role, fetch)
    assert problems(response.content) == []


@pytest.mark.django_db
@pytest.mark.parametrize("role, page_name, fetch", REFUSED_FORMS, ids=[f"{r or 'anonymous'}: {p}" for r, p, _ in REFUSED_FORMS])
def test_form_errors_are_announced_where_the_person_is_looking(client, site, role, page_name, fetch):
    response = _open(client, site, role, fetch)
    assert problems(response.content, form_errors_expected=True) == []


@pytest.mark.django_db
def test_locked_out_page(client, settings):
    UserFactory(username="victim")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(reverse("login"), {"username": "victim", "password": "wrong"})
    assert response.status_code == 429 and problems(response.content, form_errors_expected=False) == []
