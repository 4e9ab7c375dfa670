"""Outlook .msg e-mails: built by tests/msgfile.py, checked against independent readers, then
uploaded and ingested through the services (the parse runs in the sandboxed child)."""

import datetime as dt
import io

import pytest

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.services import UploadRejected
from tests.msgfile import build_cfb, build_msg, message_tree
from tests.uploads import ingest_one, upload_files

SUBJECT = "Evacuation drill moved to Thursday"
BODY = (
    "Hello all,\n\n"
    "The quarterly evacuation drill is moved to Thursday at 10:15. Assemble at point C, "
    "behind the bicycle shed, and wait for the floor warden's roll call.\n\n"
    "Regards,\nFacilities"
)


def a_message(**overrides) -> bytes:
    fields = {"subject": SUBJECT, "body": BODY, "sender_name": "Ingrid Facilities",
              "sender_email": "facilities@example.org", "to": "All Staff <staff@example.org>"}
    return build_msg(**{**fields, **overrides})


# ---- the writer itself, against readers that share no code with it ------------------------


def test_writer_output_is_a_valid_compound_file():
    import olefile

    data = a_message()
    assert olefile.isOleFile(data=data)
    # strict: any structural defect (bad FAT chain, directory loop, sizes) raises
    with olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT) as ole:
        assert ole.parsing_issues == []
        streams = {"/".join(path) for path in ole.listdir()}
        assert {"__properties_version1.0", "__substg1.0_0037001F", "__substg1.0_1000001F",
                "__substg1.0_0C1A001F", "__substg1.0_0C1F001F", "__substg1.0_001A001F",
                "__substg1.0_0E04001F"} <= streams
        assert ole.openstream("__substg1.0_0037001F").read().decode("utf-16-le") == SUBJECT
        assert ole.root.clsid == "00020D0B-0000-0000-C000-000000000046"
        # every sibling tree is a binary search tree in CFB order and a valid red-black tree
        for entry in ole.direntries:
            if entry is not None and entry.entry_type in (olefile.STGTY_ROOT, olefile.STGTY_STORAGE):
                _check_red_black(ole, entry.sid_child)


def _check_red_black(ole, sid) -> int:
    """Black height of the subtree at ``sid``; asserts ordering and colour rules."""
    import olefile

    if sid == olefile.NOSTREAM:
        return 1
    node = ole.direntries[sid]
    key = (len(node.name), node.name.upper())
    for child_sid, smaller in ((node.sid_left, True), (node.sid_right, False)):
        if child_sid != olefile.NOSTREAM:
            child = ole.direntries[child_sid]
            assert ((len(child.name), child.name.upper()) < key) == smaller
            assert not (node.color == 0 and child.color == 0), "red node with a red child"
    left, right = _check_red_black(ole, node.sid_left), _check_red_black(ole, node.sid_right)
    assert left == right, "unequal black heights"
    return left + (node.color == 1)


def test_libmagic_recognises_the_writer_output():
    import magic  # libmagic's own CDF parser: a third reader

    assert magic.from_buffer(a_message()) == "CDFV2 Microsoft Outlook Message"


@pytest.mark.parametrize("body", [BODY, "Långt brev. " * 500])  # mini stream, and a >= 4096-byte stream
def test_writer_output_reads_back_with_python_oxmsg(body):
    from oxmsg import Message

    message = Message.load(a_message(body=body))
    assert message.subject == SUBJECT
    assert message.body == body
    assert message.message_class == "IPM.Note"
    assert message.sender == '"Ingrid Facilities" <facilities@example.org>'
    assert message.sent_date == dt.datetime(2024, 3, 5, 9, 30, tzinfo=dt.timezone.utc)
    assert [(r.name, r.email_address) for r in message.recipients] == [("All Staff", "staff@example.org")]
    assert message.properties.str_prop_value(0x0E04) == "All Staff"


def test_unstructured_partitions_the_written_message():
    from apps.ingestion import parsing

    parsing.ensure_offline_nlp()  # before unstructured is imported
    from unstructured.partition.msg import partition_msg

    elements = partition_msg(file=io.BytesIO(a_message()), process_attachments=False)
    text = "\n".join(e.text for e in elements)
    assert "moved to Thursday at 10:15" in text and "bicycle shed" in text
    assert elements[0].metadata.subject == SUBJECT
    assert elements[0].metadata.sent_from == ['"Ingrid Facilities" <facilities@example.org>']
    assert elements[0].metadata.sent_to == ["staff@example.org"]


def test_detected_as_msg_by_content_whatever_its_name(tmp_path):
    from apps.ingestion.parsing import detect_file_type

    path = tmp_path / "forwarded.bin"
    path.write_bytes(a_message())
    assert detect_file_type(path, "mail.msg") == ".msg"
    assert detect_file_type(path, "no-extension") == ".msg"


# ---- through the product -------------------------------------------------------------------


def upload(collection, user, name, data):
    [result] = upload_files(collection, user, name, data)
    return result


def assert_still_ingests(collection, user):
    """The failure left the process able to ingest the next file."""
    good = ingest_one(collection, user, "after.msg", a_message(subject="Canteen hours", body="The canteen opens at noon."))
    assert good.status == Document.Status.INDEXED, good.failure_reason
    assert Chunk.objects.filter(document=good, text__contains="opens at noon").exists()


@pytest.mark.django_db
def test_uploaded_msg_is_indexed_and_searchable(collection, corpus_admin):
    from apps.retrieval.services import chunks_search

    document = ingest_one(collection, corpus_admin, "drill.msg", a_message())
    assert not isinstance(document, UploadRejected), str(document)
    assert document.file_type == ".msg"
    assert document.status == Document.Status.INDEXED, document.failure_reason
    texts = list(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert len(texts) == document.chunk_count > 0
    joined = "\n".join(texts)
    assert "moved to Thursday at 10:15" in joined and "behind the bicycle shed" in joined

    hits = chunks_search(user=corpus_admin, query="where do we assemble for the evacuation drill")
    assert hits and hits[0].document_id == document.id and "bicycle shed" in hits[0].text


@pytest.mark.django_db
def test_msg_subject_is_indexed(collection, corpus_admin):
    document = ingest_one(collection, corpus_admin, "drill.msg", a_message())
    assert document.status == Document.Status.INDEXED, document.failure_reason
    assert Chunk.objects.filter(document=document, text__contains=SUBJECT).exists()


@pytest.mark.django_db
def test_text_file_named_msg_is_refused_at_upload_with_a_reason(collection, corpus_admin):
    outcome = upload(collection, corpus_admin, "notes.msg", b"Plain notes, not an e-mail.\nSecond line.\n")
    assert isinstance(outcome, UploadRejected)
    reason = str(outcome)
    assert "notes.msg" in reason and "content is plain text" in reason and "rename the file to .txt" in reason
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_REJECTED, payload__file_name="notes.msg").exists()
    assert not Document.objects.exists()
    assert_still_ingests(collection, corpus_admin)


def truncated_msg() -> bytes:
    return a_message()[:1000]  # the header and the FAT survive; directory and streams do not


@pytest.mark.django_db
def test_truncated_msg_is_refused_at_upload_with_a_reason(collection, corpus_admin):
    outcome = upload(collection, corpus_admin, "cut.msg", truncated_msg())
    assert isinstance(outcome, UploadRejected)
    reason = str(outcome)
    assert reason.startswith("cut.msg: ") and "Traceback" not in reason and len(reason) < 600
    # Called what it is: a damaged e-mail, not a legacy Office file to convert.
    assert "legacy" not in reason and "damaged or incomplete" in reason and "Outlook" in reason
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_REJECTED, payload__file_name="cut.msg").exists()
    assert not Document.objects.exists()
    assert_still_ingests(collection, corpus_admin)


@pytest.mark.django_db
def test_truncated_msg_reason_says_damaged_not_legacy_office(collection, corpus_admin):
    reason = str(upload(collection, corpus_admin, "cut.msg", truncated_msg()))
    assert "legacy" not in reason and ("damaged" in reason or "incomplete" in reason)


def msg_missing_its_body_stream() -> bytes:
    """A readable compound file whose properties declare PR_BODY, but whose body stream is gone."""
    tree = message_tree(SUBJECT, BODY, "Ingrid Facilities", "facilities@example.org", "staff@example.org")
    tree.children = [node for node in tree.children if node.name != "__substg1.0_1000001F"]
    return build_cfb(tree)


@pytest.mark.django_db
def test_damaged_msg_fails_at_parse_with_a_reason(collection, corpus_admin):
    document = ingest_one(collection, corpus_admin, "damaged.msg", msg_missing_its_body_stream())
    assert document.file_type == ".msg"
    assert document.status == Document.Status.FAILED and document.failure_code == "corrupt"
    assert "damaged.msg" in document.failure_reason and "Traceback" not in document.failure_reason
    assert not Chunk.objects.filter(document=document).exists()
    assert_still_ingests(collection, corpus_admin)


@pytest.mark.django_db
def test_damaged_msg_reason_is_about_e_mail(collection, corpus_admin):
    document = ingest_one(collection, corpus_admin, "damaged.msg", msg_missing_its_body_stream())
    assert "application/vnd.ms-outlook" not in document.failure_reason
    assert "UTF-8" not in document.failure_reason
