-- The indexes and outgoing foreign keys of the bulk-loaded tables, to drop before a bulk load
-- and re-create after it: one sorted index build and one validating join are much cheaper than
-- maintaining them row by row. Primary keys stay (other tables' foreign keys need them).
SELECT 'index' AS kind, n.nspname AS schema, ic.relname AS name, c.relname AS on_table,
       pg_get_indexdef(i.indexrelid) AS definition
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
 WHERE c.oid = ANY (%(tables)s::regclass[])
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid)
UNION ALL
SELECT 'foreign key', n.nspname, k.conname, c.relname, pg_get_constraintdef(k.oid)
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE k.conrelid = ANY (%(tables)s::regclass[]) AND k.contype = 'f'
 ORDER BY 1 DESC, 3;
