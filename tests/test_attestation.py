import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.audit.attestation import attestation_passed, attestation_report, self_test
from apps.audit.models import AuditEvent, EventType
from rag_platform.process import egress_refusals


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")


@pytest.mark.allow_hosts(["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_self_test_refuses_a_forbidden_loopback_destination_and_is_not_counted():
    before = egress_refusals.blocked_count
    result = self_test()
    assert result["passed"] and result["refused_before_connect"] and result["nothing_arrived"]
    assert result["destination"].startswith("127.0.0.")
    assert egress_refusals.blocked_count == before


@pytest.mark.django_db
@pytest.mark.allow_hosts(["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_attestation_page_and_command(client, compliance_officer, member, capsys):
    assert attestation_report()["chain"]["verified"] is False  # the page never walks the trail itself
    call_command("audit_verify")
    report = attestation_report()
    assert {e["variable"] for e in report["endpoints"]} == {"DATABASE_URL", "CELERY_BROKER_URL", "LLM_BASE_URL"}
    assert all(e["local"] for e in report["endpoints"]) and all(report["offline_switches"].values())
    assert report["chain"]["ok"] and attestation_passed(report)
    assert report["database_role"] == {"name": "rag_app", "superuser": False, "owns_trail": False, "separate": True}
    assert not attestation_passed({**report, "database_role": {**report["database_role"], "separate": False}})
    client.force_login(member)
    assert client.get(reverse("audit:attestation")).status_code == 403
    client.force_login(compliance_officer)
    page = client.get(reverse("audit:attestation")).content.decode()
    assert "PASSED" in page and "refused before it was made" in page and "HF_HUB_OFFLINE" in page
    call_command("attest")
    out = capsys.readouterr().out
    assert "PASSED" in out and "Blocked outbound attempts recorded in the audit trail: 0" in out
    assert AuditEvent.objects.filter(event_type=EventType.ATTESTATION_VIEWED).count() == 2
