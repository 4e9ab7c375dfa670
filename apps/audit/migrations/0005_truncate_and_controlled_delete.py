"""Extend the append-only trigger: TRUNCATE is rejected too, and DELETE opens only for expiry.

Two doors, each a transaction-local setting that only our code sets:

* ``rag.audit_expiry = 'on'`` (SET LOCAL by ``audit_expire``): DELETE of an event is allowed
  only if a signed checkpoint already covers it, a tombstone keeps its place in the chain
  and no legal hold covers its time. Retention age per event class is decided by the
  service; the trigger makes sure expiry can never make the trail unverifiable.
* ``rag.audit_flush = 'on'`` (SET LOCAL by the ``flush`` command override): TRUNCATE, which
  Django's test runner uses between transactional tests. ``manage.py flush`` on a real
  database refuses to set it unless told ``--include-audit-trail``; a truncation the chain
  did not sanction is still caught by the checkpoints.

Why settings and not a separate database role: the embedded database runs as one
superuser, and a superuser can disable triggers anyway; the trigger stops mistakes and the
application, the checkpoints catch the superuser. Where the deployment has a separate
application role, also ``REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent FROM <role>``
(apps/audit/management/commands/audit_harden_grants.py prints the statements).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_event_reject_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF current_setting('rag.audit_flush', true) = 'on' THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent'
          AND current_setting('rag.audit_expiry', true) = 'on' THEN
        IF EXISTS (SELECT 1 FROM audit_auditcheckpoint c WHERE c.last_sequence >= OLD.sequence)
           AND EXISTS (SELECT 1 FROM audit_audittombstone t
                       WHERE t.sequence = OLD.sequence AND t.hash = OLD.hash)
           AND NOT EXISTS (SELECT 1 FROM audit_legalhold h WHERE h.released_at IS NULL
                           AND OLD.created_at BETWEEN h.starts_at AND h.ends_at) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit event % may not expire: not checkpointed, not tombstoned or on legal hold', OLD.sequence
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_reject_change();

CREATE TRIGGER audit_checkpoint_append_only
    BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION audit_event_reject_change();
CREATE TRIGGER audit_checkpoint_no_truncate
    BEFORE TRUNCATE ON audit_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_reject_change();

CREATE TRIGGER audit_tombstone_append_only
    BEFORE UPDATE OR DELETE ON audit_audittombstone
    FOR EACH ROW EXECUTE FUNCTION audit_event_reject_change();
CREATE TRIGGER audit_tombstone_no_truncate
    BEFORE TRUNCATE ON audit_audittombstone
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_reject_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_tombstone_append_only ON audit_audittombstone;
DROP TRIGGER IF EXISTS audit_tombstone_no_truncate ON audit_audittombstone;
CREATE OR REPLACE FUNCTION audit_event_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_trail_fields_checkpoints_retention")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
