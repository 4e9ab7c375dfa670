"""The one way the application role adds audit events: ``audit_append(contents text[])``.

A SECURITY DEFINER function owned by the table owner. Under the writers' advisory lock it
reads the chain head, assigns each event the next sequence and the previous hash, records
the session's database role, refuses a timestamp more than five minutes from the database
clock, and computes the format-2 hash (apps.audit.chain.link_hash) itself. The application
role gets EXECUTE on it and SELECT on the trail, nothing else (apps.audit.grants), so it
can neither choose a sequence nor write a hash.

The trigger doors (``rag.audit_expiry``, ``rag.audit_flush``) now open only for the table
owner (or a superuser): another role that sets them gains nothing; it lacks DELETE and
TRUNCATE anyway.

``audit_legal_hold_release(id)`` is the only way to end a legal hold without UPDATE on the
table; apps.audit.retention writes the audit event in the same transaction.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_append(contents text[])
RETURNS TABLE(event_pk bigint, event_sequence bigint, event_prev_hash varchar, event_hash varchar,
              event_db_role varchar)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    content text;
    c jsonb;
    seq bigint;
    prev varchar;
    h varchar;
    ts timestamptz;
    new_id bigint;
    role_name varchar := session_user;
BEGIN
    PERFORM pg_advisory_xact_lock(1380009793);  -- 0x52414741, apps.audit.services._CHAIN_LOCK_KEY
    SELECT e.sequence, e.hash INTO seq, prev FROM public.audit_auditevent e ORDER BY e.sequence DESC LIMIT 1;
    IF seq IS NULL THEN
        seq := 0;
        prev := repeat('0', 64);
    END IF;
    FOREACH content IN ARRAY contents LOOP
        c := content::jsonb;
        ts := (c->>'created_at')::timestamptz;
        IF abs(extract(epoch FROM ts - clock_timestamp())) > 300 THEN
            RAISE EXCEPTION 'audit event time % is more than 5 minutes from the database clock', c->>'created_at'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        seq := seq + 1;
        h := encode(sha256(convert_to(
                seq::text || '|' || prev || '|' || (c->>'created_at') || '|' || (c->>'event_type') || '|'
                || role_name || '|' || encode(sha256(convert_to(content, 'UTF8')), 'hex'), 'UTF8')), 'hex');
        INSERT INTO public.audit_auditevent
            (sequence, created_at, event_type, outcome, actor_id, actor_username, actor_roles, payload, event_id,
             session_hash, ip_address, user_agent, request_id, process, db_role, hash_version, prev_hash, hash)
        VALUES (seq, ts, c->>'event_type', c->>'outcome', (c->>'actor_id')::bigint, c->>'actor_username',
                c->'actor_roles', c->'payload', nullif(c->>'event_id', '')::uuid, c->>'session_hash',
                c->>'ip_address', c->>'user_agent', c->>'request_id', c->>'process', role_name, 2, prev, h)
        RETURNING id INTO new_id;
        event_pk := new_id;
        event_sequence := seq;
        event_prev_hash := prev;
        event_hash := h;
        event_db_role := role_name;
        RETURN NEXT;
        prev := h;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit_append(text[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_legal_hold_release(hold bigint) RETURNS timestamptz
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE public.audit_legalhold SET released_at = clock_timestamp()
    WHERE id = hold AND released_at IS NULL RETURNING released_at;
$$;
REVOKE ALL ON FUNCTION audit_legal_hold_release(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_event_reject_change() RETURNS trigger AS $$
DECLARE
    is_owner boolean := EXISTS (
        SELECT 1 FROM pg_class t JOIN pg_roles r ON r.rolname = current_user
        WHERE t.oid = TG_RELID AND (t.relowner = r.oid OR r.rolsuper));
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF is_owner AND current_setting('rag.audit_flush', true) = 'on' THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent'
          AND is_owner AND current_setting('rag.audit_expiry', true) = 'on' THEN
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
"""

BACKWARD = """
DROP FUNCTION IF EXISTS audit_append(text[]);
DROP FUNCTION IF EXISTS audit_legal_hold_release(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_db_role_hash_version")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
