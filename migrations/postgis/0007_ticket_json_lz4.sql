-- Ticket documents as `json` text, LZ4-compressed (issue 4). A ticket's document (its
-- check: conflicts, owners, geometries; responses; history) is opaque to SQL — every
-- filtered or unique field is a column of its own — so PostgreSQL need not build a binary
-- `jsonb` tree of it (key sorting and string de-escaping) on every write and turn it back
-- into text on every read; `json` only checks the syntax. A profile of ticket submission
-- put `jsonb` input and pglz compression at ~20 % and ~13 % of PostgreSQL's CPU. LZ4
-- compresses several times faster than the default pglz at a similar ratio; existing
-- values are rewritten by the type change. A server built without LZ4 keeps pglz.
ALTER TABLE excavation_tickets ALTER COLUMN doc TYPE json USING doc::json;
DO $$
BEGIN
  ALTER TABLE excavation_tickets ALTER COLUMN doc SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'LZ4 is not available in this server; ticket documents keep pglz';
END
$$;
