-- Issue 21: the audit log records reads too, and can be trusted (as
-- migrations/postgis/0011_audit.sql, in SQLite's terms).
--
-- * Reads carry an area (bbox columns, indexed by an R*Tree) and the request id.
-- * Every entry is chained (`seq`, `prev_hash`, `hash`; crates/model/src/audit.rs). The
--   store writes on one connection only, so appends are serialised already; an AFTER
--   INSERT trigger seals each new row with `lifeline_audit_hash`, an SQL function every
--   connection of the store registers (another tool that appends to this table without it
--   fails, which is what an append-only log wants).
-- * Append-only: a sealed row cannot be updated; rows are deleted only by the retention
--   cut, which opens `audit_anchor.pruning` inside its transaction and moves the anchor.
-- * A new role, `auditor` (SQLite cannot alter a CHECK: the two tables with a role CHECK
--   are rebuilt with their rows and ids).

CREATE TABLE audit_anchor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  cut_at DATETIME,
  pruning INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_anchor (id, seq, hash)
  VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log_v11 (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at DATETIME NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role = 'auditor' OR role = 'viewer' OR role = 'contractor' OR
                            role = 'analyst' OR role = 'operator' OR role = 'admin'),
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}',
  request_id TEXT,
  min_x REAL,
  min_y REAL,
  max_x REAL,
  max_y REAL,
  seq INTEGER UNIQUE,
  prev_hash TEXT,
  hash TEXT
);
INSERT INTO audit_log_v11 (id, at, actor, role, action, target, detail)
  SELECT id, at, actor, role, action, target, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v11 RENAME TO audit_log;

-- The existing entries become the start of the chain, in id order.
WITH RECURSIVE chain(id, n, prev, h) AS (
  SELECT a.id, 1, '0000000000000000000000000000000000000000000000000000000000000000',
         lifeline_audit_hash('0000000000000000000000000000000000000000000000000000000000000000',
                             1, a.at, a.actor, a.role, a.action, a.target, a.detail, a.request_id)
    FROM audit_log a WHERE a.id = (SELECT min(id) FROM audit_log)
  UNION ALL
  SELECT a.id, chain.n + 1, chain.h,
         lifeline_audit_hash(chain.h, chain.n + 1, a.at, a.actor, a.role, a.action, a.target,
                             a.detail, a.request_id)
    FROM chain JOIN audit_log a ON a.id = (SELECT min(id) FROM audit_log WHERE id > chain.id)
)
UPDATE audit_log SET
  seq = (SELECT n FROM chain WHERE chain.id = audit_log.id),
  prev_hash = (SELECT prev FROM chain WHERE chain.id = audit_log.id),
  hash = (SELECT h FROM chain WHERE chain.id = audit_log.id);

CREATE VIRTUAL TABLE rtree_audit_log_area USING rtree(id, minx, maxx, miny, maxy);

CREATE TRIGGER audit_log_chain AFTER INSERT ON audit_log
BEGIN
  UPDATE audit_log SET
    seq = coalesce((SELECT max(seq) FROM audit_log), (SELECT seq FROM audit_anchor)) + 1,
    prev_hash = coalesce(
      (SELECT hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)),
      (SELECT hash FROM audit_anchor))
  WHERE id = NEW.id;
  UPDATE audit_log SET
    hash = lifeline_audit_hash(prev_hash, seq, at, actor, role, action, target, detail,
                               request_id)
  WHERE id = NEW.id;
  INSERT INTO rtree_audit_log_area (id, minx, maxx, miny, maxy)
    SELECT NEW.id, NEW.min_x, NEW.max_x, NEW.min_y, NEW.max_y WHERE NEW.min_x IS NOT NULL;
END;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
  WHEN OLD.hash IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only (UPDATE refused)');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  WHEN (SELECT pruning FROM audit_anchor) = 0
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only (DELETE refused)');
END;

CREATE TRIGGER audit_log_area_delete AFTER DELETE ON audit_log
BEGIN
  DELETE FROM rtree_audit_log_area WHERE id = OLD.id;
END;

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_at_idx ON audit_log (actor, at);
CREATE INDEX audit_log_action_at_idx ON audit_log (action, at);

CREATE TABLE api_keys_v11 (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role = 'auditor' OR role = 'viewer' OR role = 'contractor' OR
                            role = 'analyst' OR role = 'operator' OR role = 'admin'),
  key_hash TEXT NOT NULL UNIQUE,
  created_at DATETIME NOT NULL,
  revoked_at DATETIME
);
INSERT INTO api_keys_v11 (id, name, role, key_hash, created_at, revoked_at)
  SELECT id, name, role, key_hash, created_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_v11 RENAME TO api_keys;
