"""The reveal event of the need-to-know review (apps.audit.review)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0008_key_rotated_event'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='event_type',
            field=models.CharField(choices=[('question.asked', 'Question asked'), ('collection.created', 'Collection created'), ('document.uploaded', 'Document uploaded'), ('document.indexed', 'Document indexed'), ('document.failed', 'Document failed'), ('document.rejected', 'Upload refused'), ('document.duplicate', 'Duplicate upload (same bytes)'), ('document.version_added', 'New document version'), ('document.deleted', 'Document deleted'), ('document.quarantined', 'Document quarantined'), ('accounts.demo_users_created', 'Demo users created'), ('auth.signed_in', 'Signed in'), ('auth.signed_out', 'Signed out'), ('auth.sign_in_failed', 'Sign-in failed'), ('access.granted', 'Access granted'), ('access.revoked', 'Access revoked'), ('accounts.role_changed', 'Role changed'), ('settings.changed', 'Settings changed'), ('audit.viewed', 'Audit trail viewed'), ('audit.exported', 'Audit trail exported'), ('audit.verified', 'Audit trail verified'), ('audit.retention_expired', 'Events removed after retention'), ('audit.legal_hold_placed', 'Legal hold placed'), ('audit.legal_hold_released', 'Legal hold released'), ('attestation.viewed', 'Attestation report produced'), ('egress.blocked', 'Outbound connection blocked'), ('audit.key_rotated', 'Audit signing key rotated'), ('audit.revealed', 'Personal data revealed to a reviewer')], db_index=True, max_length=64),
        ),
    ]
