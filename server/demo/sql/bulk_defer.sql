-- What to drop before a bulk load into the given tables and re-create after it: their primary
-- keys, other indexes and foreign keys, and the foreign keys of other tables that point at them
-- (a primary key cannot go while one does). One sorted build and one validating join each are
-- much cheaper than maintaining them row by row. Re-create in this order (keys, indexes,
-- foreign keys); drop in the reverse order.
SELECT DISTINCT ON (kind, name) *
  FROM (SELECT 'index' AS kind, n.nspname AS schema, ic.relname AS name, c.relname AS on_table,
               pg_get_indexdef(i.indexrelid) AS definition
          FROM pg_index i
          JOIN pg_class c ON c.oid = i.indrelid
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_namespace n ON n.oid = ic.relnamespace
         WHERE c.oid = ANY (%(tables)s::regclass[])
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid)
        UNION ALL
        SELECT CASE k.contype WHEN 'p' THEN 'key' ELSE 'foreign key' END, n.nspname, k.conname, c.relname,
               pg_get_constraintdef(k.oid)
          FROM pg_constraint k
          JOIN pg_class c ON c.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE (k.contype = 'p' AND k.conrelid = ANY (%(tables)s::regclass[]))
            OR (k.contype = 'f' AND (k.conrelid = ANY (%(tables)s::regclass[])
                                     OR k.confrelid = ANY (%(tables)s::regclass[])))) AS deferred
 ORDER BY kind DESC, name;
