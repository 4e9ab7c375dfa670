"""Issue 23: the database accepts only canonical content, and the trail's control events
come only from the definer functions that do what they record.

* ``audit_canonical_json(jsonb)``: the text ``apps.audit.chain.canonical_json`` gives for
  the same value once read back (sorted keys by code point, no spaces, strings escaped as
  Python's ``json.dumps(ensure_ascii=False)``, numbers as Python reads jsonb's text back:
  an integer as digits, a decimal as the float's ``repr``).
* ``audit_append(contents)`` refuses any content that is not exactly that text of an
  object with the thirteen content keys, typed as the columns, ``created_at`` as
  ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` (M2: a malformed append is refused, not a row that
  can never verify). It refuses the control events ``audit.erased``,
  ``audit.legal_hold_placed``, ``audit.legal_hold_released`` and, except for the table
  owner (the expiry command), ``audit.retention_expired`` (M3).
* ``audit_erase`` (0009, unchanged otherwise), ``audit_legal_hold_place(content)`` and
  ``audit_legal_hold_release(hold, content)`` append their event through the internal
  ``audit_append_checked(contents, control)``, which no other role may call, in the same
  transaction as the change they record; the application role loses INSERT on holds.
* ``audit_integrityrun``: the signer's signed results (apps.audit.monitoring), append-only.
"""

from importlib import import_module

from django.db import migrations, models

CONTENT_KEYS = ["actor_id", "actor_roles", "actor_username", "created_at", "event_id", "event_type", "ip_address",
                "outcome", "payload", "process", "request_id", "session_hash", "user_agent"]

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_canonical_number(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 AS $$
DECLARE
    s text;
    m text;
    e int;
    digits text;
    negative boolean;
BEGIN
    IF t !~ '[.eE]' THEN
        RETURN (t::numeric)::text;  -- Python reads an integer: its digits ('-0' is 0)
    END IF;
    s := (t::float8)::text;  -- the shortest text that reads back as the same double
    IF s !~ 'e' THEN
        RETURN CASE WHEN s ~ '\.' THEN s ELSE s || '.0' END;
    END IF;
    m := split_part(s, 'e', 1);
    e := split_part(s, 'e', 2)::int;
    IF e >= 16 OR e < -4 THEN
        RETURN s;  -- Python's repr uses the exponent here too, in the same form
    END IF;
    negative := m LIKE '-%';
    digits := replace(ltrim(m, '-'), '.', '');
    IF length(digits) > e + 1 THEN
        s := left(digits, e + 1) || '.' || substr(digits, e + 2);
    ELSE
        s := rpad(digits, e + 1, '0') || '.0';
    END IF;
    RETURN CASE WHEN negative THEN '-' || s ELSE s END;
END
$$;

CREATE OR REPLACE FUNCTION audit_canonical_json(j jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result text;
    k text;
    v jsonb;
    first boolean := true;
BEGIN
    CASE jsonb_typeof(j)
    WHEN 'object' THEN
        result := '{';
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(j) e ORDER BY e.key COLLATE "C" LOOP
            IF NOT first THEN result := result || ','; END IF;
            first := false;
            result := result || to_jsonb(k)::text || ':' || public.audit_canonical_json(v);
        END LOOP;
        RETURN result || '}';
    WHEN 'array' THEN
        result := '[';
        FOR v IN SELECT a.value FROM jsonb_array_elements(j) WITH ORDINALITY a(value, n) ORDER BY a.n LOOP
            IF NOT first THEN result := result || ','; END IF;
            first := false;
            result := result || public.audit_canonical_json(v);
        END LOOP;
        RETURN result || ']';
    WHEN 'number' THEN
        RETURN public.audit_canonical_number(j::text);
    ELSE
        RETURN j::text;  -- a string (escaped as Python escapes it), true, false or null
    END CASE;
END
$$;

CREATE OR REPLACE FUNCTION audit_content_problem(content text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb;
    k text;
BEGIN
    BEGIN
        c := content::jsonb;
    EXCEPTION WHEN others THEN
        RETURN 'not JSON';
    END;
    IF jsonb_typeof(c) IS DISTINCT FROM 'object' THEN
        RETURN 'not a JSON object';
    END IF;
    IF (SELECT array_agg(x ORDER BY x COLLATE "C") FROM jsonb_object_keys(c) x) IS DISTINCT FROM __CONTENT_KEYS__ THEN
        RETURN 'the keys are not exactly the event content keys';
    END IF;
    FOREACH k IN ARRAY ARRAY['created_at', 'event_type', 'outcome', 'actor_username', 'event_id', 'session_hash',
                              'ip_address', 'user_agent', 'request_id', 'process'] LOOP
        IF jsonb_typeof(c->k) IS DISTINCT FROM 'string' THEN
            RETURN k || ' is not a string';
        END IF;
    END LOOP;
    IF NOT (jsonb_typeof(c->'actor_id') = 'null'
            OR (jsonb_typeof(c->'actor_id') = 'number' AND (c->>'actor_id') ~ '^-?[0-9]+$')) THEN
        RETURN 'actor_id is not an integer or null';
    END IF;
    IF jsonb_typeof(c->'actor_roles') <> 'array' OR jsonb_typeof(c->'payload') <> 'object' THEN
        RETURN 'actor_roles must be an array and payload an object';
    END IF;
    IF (c->>'created_at') !~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$' THEN
        RETURN 'created_at is not YYYY-MM-DDTHH:MM:SS.ffffff+00:00';
    END IF;
    IF to_char((c->>'created_at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
       <> c->>'created_at' THEN
        RETURN 'created_at is not a real UTC time';
    END IF;
    IF (c->>'event_id') <> '' AND (c->>'event_id')::uuid::text <> c->>'event_id' THEN
        RETURN 'event_id is not a lower-case UUID';
    END IF;
    IF public.audit_canonical_json(c) <> content THEN
        RETURN 'not canonical JSON (key order, spacing, escapes or number form)';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION audit_append_checked(contents text[], control boolean)
RETURNS TABLE(event_pk bigint, event_sequence bigint, event_prev_hash varchar, event_hash varchar,
              event_db_role varchar)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    content text;
    c jsonb;
    problem text;
    seq bigint;
    prev varchar;
    h varchar;
    ts timestamptz;
    new_id bigint;
    role_name varchar := session_user;
    session_owns boolean := EXISTS (
        SELECT 1 FROM pg_class t JOIN pg_roles r ON r.rolname = session_user
        WHERE t.oid = 'public.audit_auditevent'::regclass AND (t.relowner = r.oid OR r.rolsuper));
BEGIN
    PERFORM pg_advisory_xact_lock(1380009793);  -- 0x52414741, apps.audit.services._CHAIN_LOCK_KEY
    SELECT e.sequence, e.hash INTO seq, prev FROM public.audit_auditevent e ORDER BY e.sequence DESC LIMIT 1;
    IF seq IS NULL THEN
        seq := 0;
        prev := repeat('0', 64);
    END IF;
    FOREACH content IN ARRAY contents LOOP
        problem := public.audit_content_problem(content);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'audit event content refused: %', problem USING ERRCODE = 'invalid_parameter_value';
        END IF;
        c := content::jsonb;
        IF NOT control AND (c->>'event_type') IN ('audit.erased', 'audit.legal_hold_placed', 'audit.legal_hold_released',
                                                  'audit.retention_expired')
           AND NOT ((c->>'event_type') = 'audit.retention_expired' AND session_owns) THEN
            RAISE EXCEPTION 'permission denied: % events are written only by the function that does what they record', c->>'event_type'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
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
REVOKE ALL ON FUNCTION audit_append_checked(text[], boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_append(contents text[])
RETURNS TABLE(event_pk bigint, event_sequence bigint, event_prev_hash varchar, event_hash varchar,
              event_db_role varchar)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM public.audit_append_checked(contents, false);
$$;
REVOKE ALL ON FUNCTION audit_append(text[]) FROM PUBLIC;

DROP FUNCTION IF EXISTS audit_legal_hold_release(bigint);

CREATE OR REPLACE FUNCTION audit_legal_hold_place(content text)
RETURNS TABLE(hold_id bigint, event_pk bigint, event_sequence bigint, event_prev_hash varchar, event_hash varchar,
              event_db_role varchar)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb := content::jsonb;
    p jsonb := c->'payload';
    new_id bigint;
BEGIN
    IF c->>'event_type' IS DISTINCT FROM 'audit.legal_hold_placed' OR jsonb_typeof(p->'reason') <> 'string'
       OR (p->>'starts_at')::timestamptz > (p->>'ends_at')::timestamptz OR p ? 'hold_id' THEN
        RAISE EXCEPTION 'audit_legal_hold_place records an audit.legal_hold_placed event with starts_at <= ends_at and a reason'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.audit_legalhold (reason, starts_at, ends_at, placed_by, placed_at)
    VALUES (p->>'reason', (p->>'starts_at')::timestamptz, (p->>'ends_at')::timestamptz, c->>'actor_username',
            clock_timestamp())
    RETURNING id INTO new_id;
    hold_id := new_id;
    FOR event_pk, event_sequence, event_prev_hash, event_hash, event_db_role IN
        SELECT * FROM public.audit_append_checked(
            ARRAY[public.audit_canonical_json(jsonb_set(c, '{payload,hold_id}', to_jsonb(new_id)))], true) LOOP
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit_legal_hold_place(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_legal_hold_release(hold bigint, content text)
RETURNS TABLE(released_at timestamptz, event_pk bigint, event_sequence bigint, event_prev_hash varchar,
              event_hash varchar, event_db_role varchar)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb := content::jsonb;
    at timestamptz;
BEGIN
    IF c->>'event_type' IS DISTINCT FROM 'audit.legal_hold_released'
       OR (c->'payload'->>'hold_id') IS DISTINCT FROM hold::text THEN
        RAISE EXCEPTION 'audit_legal_hold_release records an audit.legal_hold_released event naming hold %', hold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE public.audit_legalhold h SET released_at = clock_timestamp()
    WHERE h.id = hold AND h.released_at IS NULL RETURNING h.released_at INTO at;
    IF at IS NULL THEN
        RAISE EXCEPTION 'no active legal hold %', hold USING ERRCODE = 'no_data_found';
    END IF;
    released_at := at;
    FOR event_pk, event_sequence, event_prev_hash, event_hash, event_db_role IN
        SELECT * FROM public.audit_append_checked(ARRAY[content], true) LOOP
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit_legal_hold_release(bigint, text) FROM PUBLIC;

CREATE TRIGGER audit_integrityrun_append_only
    BEFORE UPDATE OR DELETE ON audit_integrityrun
    FOR EACH ROW EXECUTE FUNCTION audit_event_reject_change();
CREATE TRIGGER audit_integrityrun_no_truncate
    BEFORE TRUNCATE ON audit_integrityrun
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_reject_change();
""".replace("__CONTENT_KEYS__", "ARRAY[" + ", ".join(f"'{k}'" for k in sorted(CONTENT_KEYS)) + "]::text[]")

# audit_erase as in 0009, but appending through the internal function (audit.erased is a
# control event: audit_append refuses it now).
_ERASE = import_module("apps.audit.migrations.0009_data_keys_and_erasure").FORWARD
_ERASE = _ERASE[_ERASE.index("CREATE OR REPLACE FUNCTION audit_erase"):]
_ERASE = _ERASE[:_ERASE.index("REVOKE ALL ON FUNCTION audit_erase")]
assert "public.audit_append(ARRAY[content])" in _ERASE
FORWARD += _ERASE.replace("public.audit_append(ARRAY[content])", "public.audit_append_checked(ARRAY[content], true)")

BACKWARD = """
DROP FUNCTION IF EXISTS audit_legal_hold_place(text);
DROP FUNCTION IF EXISTS audit_legal_hold_release(bigint, text);
CREATE OR REPLACE FUNCTION audit_legal_hold_release(hold bigint) RETURNS timestamptz
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE public.audit_legalhold SET released_at = clock_timestamp()
    WHERE id = hold AND released_at IS NULL RETURNING released_at;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0010_revealed_event")]

    operations = [
        migrations.CreateModel(
            name="IntegrityRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("verify", "Automatic verification"),
                                                   ("presign", "Check before signing")], max_length=16)),
                ("created_at", models.DateTimeField()),
                ("ok", models.BooleanField()),
                ("problems", models.JSONField(default=list)),
                ("from_sequence", models.BigIntegerField(default=0)),
                ("head_sequence", models.BigIntegerField(default=0)),
                ("head_hash", models.CharField(blank=True, max_length=64)),
                ("events_checked", models.BigIntegerField(default=0)),
                ("statement", models.TextField()),
                ("signature", models.CharField(max_length=128)),
                ("public_key", models.CharField(max_length=64)),
            ],
            options={"ordering": ["-id"]},
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
