-- Issue 21: the audit log records reads too, and can be trusted.
--
-- * Reads carry an area (indexed for "who saw pipes here") and the request id.
-- * Every entry is chained: `seq` is the append order, `prev_hash` the previous entry's
--   `hash`, `hash` the SHA-256 over a canonical encoding of the entry (see
--   crates/model/src/audit.rs, which verifies it). The BEFORE INSERT trigger takes an
--   advisory lock held to commit, so appends are serialised and each one sees the last
--   committed entry, whichever statement inserts it (the ticket statements insert audit
--   rows in their own CTEs).
-- * The table is append-only: updates and truncation are refused, deletes only by the
--   retention cut, which sets `lifeline.audit_prune` for its transaction and moves the
--   anchor (the last removed entry's seq and hash) so the rest stays verifiable.
-- * A new role, `auditor`, that can only read the audit log.

ALTER TABLE audit_log DROP CONSTRAINT audit_log_role_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_role_check
  CHECK (role IN ('auditor', 'viewer', 'contractor', 'analyst', 'operator', 'admin'));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
  CHECK (role IN ('auditor', 'viewer', 'contractor', 'analyst', 'operator', 'admin'));

ALTER TABLE audit_log
  ADD COLUMN seq bigint,
  ADD COLUMN request_id text,
  ADD COLUMN area geometry(Geometry, 4490),
  ADD COLUMN prev_hash text,
  ADD COLUMN hash text;

-- Where the stored chain begins: 0 and the genesis hash until a retention cut.
CREATE TABLE audit_anchor (
  id integer PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  hash text NOT NULL,
  cut_at timestamptz
);
INSERT INTO audit_anchor (id, seq, hash)
  VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- The canonical encoding of one field: `<byte length>:<bytes>;`.
CREATE FUNCTION lifeline_audit_field(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT octet_length(t)::text || ':' || t || ';' $$;

CREATE FUNCTION lifeline_audit_hash(prev text, seq bigint, at timestamptz, actor text,
                                    role text, action text, target text, detail jsonb,
                                    request_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(
    lifeline_audit_field(prev) ||
    lifeline_audit_field(seq::text) ||
    lifeline_audit_field(((extract(epoch FROM at) * 1000000)::numeric(20, 0))::text) ||
    lifeline_audit_field(actor) || lifeline_audit_field(role) ||
    lifeline_audit_field(action) || lifeline_audit_field(target) ||
    lifeline_audit_field(detail::text) || lifeline_audit_field(coalesce(request_id, '')),
    'UTF8')), 'hex')
$$;

-- The existing entries become the start of the chain, in id order.
DO $$
DECLARE
  r record;
  n bigint := 0;
  h text := '0000000000000000000000000000000000000000000000000000000000000000';
BEGIN
  FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
    n := n + 1;
    UPDATE audit_log SET seq = n, prev_hash = h,
      hash = lifeline_audit_hash(h, n, r.at, r.actor, r.role, r.action, r.target, r.detail,
                                 r.request_id)
      WHERE id = r.id
      RETURNING audit_log.hash INTO h;
  END LOOP;
END
$$;

ALTER TABLE audit_log
  ALTER COLUMN seq SET NOT NULL,
  ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN hash SET NOT NULL,
  ADD CONSTRAINT audit_log_seq_key UNIQUE (seq);

CREATE FUNCTION lifeline_audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  -- Held to commit: the next append waits, then sees this entry.
  PERFORM pg_advisory_xact_lock(5497002083629268995);
  SELECT a.seq, a.hash INTO last_seq, last_hash FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
  IF last_seq IS NULL THEN
    SELECT a.seq, a.hash INTO last_seq, last_hash FROM audit_anchor a WHERE a.id = 1;
  END IF;
  NEW.seq := last_seq + 1;
  NEW.prev_hash := last_hash;
  NEW.hash := lifeline_audit_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.actor, NEW.role,
                                  NEW.action, NEW.target, NEW.detail, NEW.request_id);
  RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION lifeline_audit_chain();

CREATE FUNCTION lifeline_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('lifeline.audit_prune', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION lifeline_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION lifeline_audit_append_only();

-- The search: by area, by actor and time, by action and time.
CREATE INDEX audit_log_area_idx ON audit_log USING gist (area);
CREATE INDEX audit_log_actor_at_idx ON audit_log (actor, at);
CREATE INDEX audit_log_action_at_idx ON audit_log (action, at);
