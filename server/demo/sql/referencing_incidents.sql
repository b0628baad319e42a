-- Tables whose rows point at incidents (the event log, photos, idempotency keys, ...): they are
-- emptied before the incidents themselves are deleted.
SELECT DISTINCT n.nspname AS schema, c.relname AS name
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE k.contype = 'f' AND k.confrelid = 'incidents'::regclass AND k.conrelid <> k.confrelid
 ORDER BY 1, 2;
