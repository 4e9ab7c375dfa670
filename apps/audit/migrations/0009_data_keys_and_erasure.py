"""Crypto-shredding: the data keys table, its append-only triggers and ``audit_erase``.

``audit_datakey`` holds each data key wrapped by the master key (a file, never in the
database). The application role may SELECT and INSERT (apps.audit.grants); UPDATE,
DELETE and TRUNCATE are rejected by trigger except (a) the test flush door and (b)
``audit_erase(key_ids, content)``: a SECURITY DEFINER function that refuses while an active
legal hold covers an event sealed with one of the keys (``payload.enc_keys``), checks that
``content`` is an ``audit.erased`` event naming exactly those keys, deletes them and appends
the event through ``audit_append``, all in the caller's transaction: no key vanishes
without a chained record.
"""

from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_datakey_reject_change() RETURNS trigger AS $$
DECLARE
    is_owner boolean := EXISTS (
        SELECT 1 FROM pg_class t JOIN pg_roles r ON r.rolname = current_user
        WHERE t.oid = TG_RELID AND (t.relowner = r.oid OR r.rolsuper));
BEGIN
    IF TG_OP = 'TRUNCATE' AND is_owner AND current_setting('rag.audit_flush', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' AND is_owner AND current_setting('rag.audit_erase', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_datakey: keys are destroyed only by audit_erase, which records the erasure; % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_datakey_append_only
    BEFORE UPDATE OR DELETE ON audit_datakey
    FOR EACH ROW EXECUTE FUNCTION audit_datakey_reject_change();
CREATE TRIGGER audit_datakey_no_truncate
    BEFORE TRUNCATE ON audit_datakey
    FOR EACH STATEMENT EXECUTE FUNCTION audit_datakey_reject_change();

CREATE INDEX audit_event_enc_keys ON audit_auditevent USING gin ((payload->'enc_keys'));

CREATE OR REPLACE FUNCTION audit_erase(key_ids bigint[], content text)
RETURNS TABLE(event_pk bigint, event_sequence bigint, event_prev_hash varchar, event_hash varchar,
              event_db_role varchar)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb := content::jsonb;
    wanted bigint[];
    named bigint[];
    k bigint;
    hold_id bigint;
    hold_reason text;
BEGIN
    IF c->>'event_type' IS DISTINCT FROM 'audit.erased' THEN
        RAISE EXCEPTION 'audit_erase records an audit.erased event, not %', c->>'event_type'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO wanted FROM unnest(coalesce(key_ids, '{}')) x;
    SELECT coalesce(array_agg(DISTINCT x::bigint ORDER BY x::bigint), '{}') INTO named
        FROM jsonb_array_elements_text(coalesce(c->'payload'->'key_ids', '[]'::jsonb)) x;
    IF wanted IS DISTINCT FROM named THEN
        RAISE EXCEPTION 'the audit.erased event must name exactly the keys it destroys (% vs %)', named, wanted
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(1380009793);  -- the chain writers' lock (audit_append takes it too)
    FOREACH k IN ARRAY wanted LOOP
        SELECT h.id, h.reason INTO hold_id, hold_reason FROM public.audit_legalhold h
        WHERE h.released_at IS NULL AND EXISTS (
            SELECT 1 FROM public.audit_auditevent e
            WHERE e.payload->'enc_keys' @> jsonb_build_array(k) AND e.created_at BETWEEN h.starts_at AND h.ends_at)
        ORDER BY h.id LIMIT 1;
        IF hold_id IS NOT NULL THEN
            RAISE EXCEPTION 'legal hold % (%) covers content sealed with data key %', hold_id, hold_reason, k
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    PERFORM set_config('rag.audit_erase', 'on', true);
    DELETE FROM public.audit_datakey WHERE id = ANY(wanted);
    PERFORM set_config('rag.audit_erase', 'off', true);
    RETURN QUERY SELECT * FROM public.audit_append(ARRAY[content]);
END
$$;
REVOKE ALL ON FUNCTION audit_erase(bigint[], text) FROM PUBLIC;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS audit_erase(bigint[], text);
DROP INDEX IF EXISTS audit_event_enc_keys;
DROP TRIGGER IF EXISTS audit_datakey_append_only ON audit_datakey;
DROP TRIGGER IF EXISTS audit_datakey_no_truncate ON audit_datakey;
DROP FUNCTION IF EXISTS audit_datakey_reject_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_key_rotated_event")]

    operations = [
        migrations.CreateModel(
            name="DataKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scope", models.CharField(choices=[("user", "Person"), ("anonymous", "Anonymous askers"),
                                                    ("document", "Document version")], max_length=16)),
                ("subject_id", models.BigIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("wrapped", models.BinaryField()),
                ("master_key_id", models.CharField(max_length=16)),
            ],
            options={"constraints": [models.UniqueConstraint(fields=("scope", "subject_id"),
                                                             name="audit_datakey_one_per_subject")]},
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="event_type",
            field=models.CharField(choices=[('question.asked', 'Question asked'), ('collection.created', 'Collection created'), ('document.uploaded', 'Document uploaded'), ('document.indexed', 'Document indexed'), ('document.failed', 'Document failed'), ('document.rejected', 'Upload refused'), ('document.duplicate', 'Duplicate upload (same bytes)'), ('document.version_added', 'New document version'), ('document.deleted', 'Document deleted'), ('document.quarantined', 'Document quarantined'), ('accounts.demo_users_created', 'Demo users created'), ('auth.signed_in', 'Signed in'), ('auth.signed_out', 'Signed out'), ('auth.sign_in_failed', 'Sign-in failed'), ('access.granted', 'Access granted'), ('access.revoked', 'Access revoked'), ('accounts.role_changed', 'Role changed'), ('settings.changed', 'Settings changed'), ('audit.viewed', 'Audit trail viewed'), ('audit.exported', 'Audit trail exported'), ('audit.verified', 'Audit trail verified'), ('audit.retention_expired', 'Events removed after retention'), ('audit.legal_hold_placed', 'Legal hold placed'), ('audit.legal_hold_released', 'Legal hold released'), ('attestation.viewed', 'Attestation report produced'), ('egress.blocked', 'Outbound connection blocked'), ('audit.key_rotated', 'Audit signing key rotated'), ('audit.erased', 'Content erased (keys destroyed)')], db_index=True, max_length=64),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
