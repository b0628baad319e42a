-- The queueing branch of the incidents trigger (sql/0021) as static SQL: PL/pgSQL keeps the
-- plans of static statements for the session, while EXECUTE planned the count and the INSERT on
-- every filing (about 0.5 ms of the 1.2 ms an incident INSERT took). Large statements keep the
-- dynamic fold of 0021, built from the same text functions.
CREATE OR REPLACE FUNCTION tiles.incidents_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    changed_rows constant text := $sql$
        (o.geom, o.grid_id, o.category_code, o.status, o.reported_at, o.due_at, o.closed_at)
        IS DISTINCT FROM
        (n.geom, n.grid_id, n.category_code, n.status, n.reported_at, n.due_at, n.closed_at)$sql$;
    kind text;
    rows_source text;
    delta_source text;
    changed integer;
    first_id bigint;
    last_id bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO changed FROM new_rows;
        IF changed <= tiles.bulk_threshold() THEN
            INSERT INTO tiles.pending_changes (kind, sign, incident_id, geom, grid_id, category_code, status,
                                               reported_at, due_at, closed_at)
            SELECT 'created', 1, id, geom, grid_id, category_code, status, reported_at, due_at, closed_at
              FROM new_rows;
            RETURN NULL;
        END IF;
        kind := 'created';
        rows_source := 'SELECT * FROM new_rows';
        delta_source := 'SELECT 1 AS sign, n.* FROM new_rows n';
    ELSIF TG_OP = 'DELETE' THEN
        SELECT count(*) INTO changed FROM old_rows;
        IF changed <= tiles.bulk_threshold() THEN
            INSERT INTO tiles.pending_changes (kind, sign, incident_id, geom, grid_id, category_code, status,
                                               reported_at, due_at, closed_at)
            SELECT 'deleted', -1, id, geom, grid_id, category_code, status, reported_at, due_at, closed_at
              FROM old_rows;
            RETURN NULL;
        END IF;
        kind := 'deleted';
        rows_source := 'SELECT * FROM old_rows';
        delta_source := 'SELECT -1 AS sign, o.* FROM old_rows o';
    ELSE
        SELECT count(*) INTO changed FROM new_rows;
        IF changed <= tiles.bulk_threshold() THEN
            -- Every updated row is logged; only rows whose counted state changed move counts.
            INSERT INTO tiles.pending_changes (kind, sign, incident_id, geom, grid_id, category_code, status,
                                               reported_at, due_at, closed_at)
            SELECT q.*
              FROM old_rows o JOIN new_rows n USING (id),
                   LATERAL (SELECT (o.geom, o.grid_id, o.category_code, o.status, o.reported_at, o.due_at,
                                    o.closed_at)
                                   IS DISTINCT FROM
                                   (n.geom, n.grid_id, n.category_code, n.status, n.reported_at, n.due_at,
                                    n.closed_at) AS moved) AS m,
                   LATERAL (SELECT NULL, -1, o.id, o.geom, o.grid_id, o.category_code, o.status, o.reported_at,
                                   o.due_at, o.closed_at
                             WHERE m.moved
                            UNION ALL
                            SELECT 'changed', CASE WHEN m.moved THEN 1 ELSE 0 END, n.id, n.geom, n.grid_id,
                                   n.category_code, n.status, n.reported_at, n.due_at, n.closed_at) AS q;
            RETURN NULL;
        END IF;
        kind := 'changed';
        rows_source := 'SELECT * FROM new_rows';
        delta_source := format(
            'SELECT -1 AS sign, o.* FROM old_rows o JOIN new_rows n USING (id) WHERE %1$s
             UNION ALL
             SELECT 1 AS sign, n.* FROM new_rows n JOIN old_rows o USING (id) WHERE %1$s',
            changed_rows);
    END IF;
    IF changed = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE tiles.incident_delta_sql(delta_source);
    EXECUTE tiles.change_log_sql(kind, rows_source, changed) INTO first_id, last_id;
    PERFORM pg_notify('gridwatch_changes',
                      json_build_object('kind', 'incidents', 'first', first_id, 'last', last_id)::text);
    RETURN NULL;
END $fn$;
