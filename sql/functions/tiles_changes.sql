-- Incident changes: the fold that keeps every tile rollup current, the change log, and the
-- NOTIFYs that tell each server process which cached tiles to drop and the change feed what to
-- announce (server/tiles/changes.py, server/feed)
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).
--
-- Every writer (workflow API, demo generator, importer, psql) goes through the triggers on
-- incidents, so no code path can leave a rollup or a cached tile behind. A small statement
-- queues its rows in tiles.pending_changes and tiles.fold_pending(), called every 250 ms by each
-- server process's change listener, folds them: every incident touches the same few coarse
-- rollup rows, and concurrent writers queued on those row locks until commit. A large statement
-- (demo load, import) folds its rows at once, which is cheaper than queueing a million.

-- ## The fold

-- tiles.incident_delta_sql(source) is the one statement that folds incident changes into every
-- rollup: `source` yields incident rows with a `sign` (+1 for a new row version, -1 for an old
-- one), and the statement adds their counts to the quadtree cells (per category, and in total),
-- the detail cells (status, month), the H3 cells (and the outlines of new ones), and the grid
-- numbers of each grid and its ancestors. It aggregates once at the finest level and derives
-- each coarser level from the one below, and per grid before fanning out to the ancestors. Rows
-- are upserted in key order so concurrent writers take row locks in the same order. Why each
-- rollup exists: docs/tiles.md.

CREATE OR REPLACE FUNCTION tiles.incident_delta_sql(source text) RETURNS text
LANGUAGE sql STABLE AS $fn$
SELECT format($sql$
WITH delta AS (
    SELECT s.sign, s.grid_id, s.category_code COLLATE "C" AS category_code, s.status COLLATE "C" AS status,
           s.status NOT IN ('closed', 'rejected') AS open,
           date_trunc('month', s.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
           tiles.cell_x(ST_X(s.geom)) AS cx20, tiles.cell_y(ST_Y(s.geom)) AS cy20,
           tiles.h3_cell(ST_X(s.geom), ST_Y(s.geom), tiles.h3_finest()) AS h3,
           s.closed_at, s.due_at, s.reported_at
      FROM (%1$s) AS s
     WHERE s.sign <> 0
),
c%2$s AS (
    SELECT cx20 >> %3$s AS cx, cy20 >> %3$s AS cy, category_code,
           sum(sign) AS n, coalesce(sum(sign) FILTER (WHERE open), 0) AS n_open
      FROM delta GROUP BY 1, 2, 3
), %4$s,
cells AS (
    INSERT INTO tiles.incident_cells AS c (level, bx, by, cx, cy, category_code, n, n_open)
    SELECT level, cx >> 6, cy >> 6, cx, cy, category_code, n, n_open
      FROM (%5$s) AS l
     WHERE n <> 0 OR n_open <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy, category_code
    ON CONFLICT (level, bx, by, cx, cy, category_code)
    DO UPDATE SET n = c.n + excluded.n, n_open = c.n_open + excluded.n_open
),
cell_totals AS (
    INSERT INTO tiles.incident_cell_totals AS c (level, bx, by, cx, cy, n, n_open)
    SELECT level, cx >> 6, cy >> 6, cx, cy, sum(n), sum(n_open)
      FROM (%5$s) AS l
     GROUP BY level, cx, cy
    HAVING sum(n) <> 0 OR sum(n_open) <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy
    ON CONFLICT (level, bx, by, cx, cy)
    DO UPDATE SET n = c.n + excluded.n, n_open = c.n_open + excluded.n_open
),
d%6$s AS (
    SELECT cx20 >> %7$s AS cx, cy20 >> %7$s AS cy, category_code, status, month, sum(sign) AS n
      FROM delta GROUP BY 1, 2, 3, 4, 5
), %8$s,
detail AS (
    INSERT INTO tiles.incident_cells_detail AS c (level, bx, by, cx, cy, category_code, status, month, n)
    SELECT level, cx >> 6, cy >> 6, cx, cy, category_code, status, month, n
      FROM (%9$s) AS l
     WHERE n <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy, category_code, status, month
    ON CONFLICT (level, bx, by, cx, cy, category_code, status, month)
    DO UPDATE SET n = c.n + excluded.n
),
h%10$s AS (
    SELECT h3 AS cell, category_code, sum(sign) AS n FROM delta GROUP BY 1, 2
), %11$s,
hexagons AS (
    INSERT INTO tiles.density_cells AS c (cell, category_code, n)
    SELECT cell, category_code, n
      FROM (%12$s) AS l
     WHERE n <> 0
     ORDER BY cell, category_code
    ON CONFLICT (cell, category_code) DO UPDATE SET n = c.n + excluded.n
),
-- The outline of each cell that holds an incident for the first time (what heatmap tiles draw).
hexagon_outlines AS (
    INSERT INTO tiles.h3_cell_outlines (res, cell, geom)
    SELECT tiles.h3_resolution(o.cell), o.cell, o.geom
      FROM tiles.h3_outlines(ARRAY(
               SELECT DISTINCT l.cell
                 FROM (%12$s) AS l
                WHERE l.n > 0
                  AND NOT EXISTS (SELECT 1 FROM tiles.h3_cell_outlines x
                                   WHERE x.res = tiles.h3_resolution(l.cell) AND x.cell = l.cell))) AS o
    ON CONFLICT (res, cell) DO NOTHING
),
hd%13$s AS (
    SELECT tiles.h3_parent(h3, %13$s) AS cell, category_code, status, month, sum(sign) AS n
      FROM delta GROUP BY 1, 2, 3, 4
), %14$s,
hexagon_detail AS (
    INSERT INTO tiles.density_cells_detail AS c (cell, category_code, status, month, n)
    SELECT cell, category_code, status, month, n
      FROM (%15$s) AS l
     WHERE n <> 0
     ORDER BY cell, category_code, status, month
    ON CONFLICT (cell, category_code, status, month) DO UPDATE SET n = c.n + excluded.n
),
-- Each changed grid with itself and its ancestors: the rows whose numbers it moves.
owners AS (
    SELECT g.id AS grid_id, a.owner_id
      FROM grids g
      CROSS JOIN LATERAL unnest(string_to_array(ltree2text(g.path), '.')::integer[]) AS a(owner_id)
     WHERE g.id IN (SELECT grid_id FROM delta)
),
grid_counts AS (
    SELECT grid_id, sum(sign) AS incidents,
           coalesce(sum(sign) FILTER (WHERE open), 0) AS open_count,
           coalesce(sum(sign) FILTER (WHERE status = 'closed'), 0) AS closed_count,
           coalesce(sum(sign) FILTER (WHERE status = 'closed' AND due_at IS NOT NULL), 0) AS closed_due,
           coalesce(sum(sign) FILTER (WHERE status = 'closed' AND closed_at <= due_at), 0) AS closed_on_time
      FROM delta GROUP BY grid_id
),
stats AS (
    INSERT INTO tiles.grid_stats AS t
           (grid_id, incidents, open_count, closed_count, closed_due, closed_on_time)
    SELECT o.owner_id, sum(incidents), sum(open_count), sum(closed_count), sum(closed_due), sum(closed_on_time)
      FROM grid_counts JOIN owners o USING (grid_id)
     GROUP BY o.owner_id
     ORDER BY o.owner_id
    ON CONFLICT (grid_id) DO UPDATE SET
        incidents = t.incidents + excluded.incidents,
        open_count = t.open_count + excluded.open_count,
        closed_count = t.closed_count + excluded.closed_count,
        closed_due = t.closed_due + excluded.closed_due,
        closed_on_time = t.closed_on_time + excluded.closed_on_time
),
grid_close_buckets AS (
    SELECT grid_id,
           -- date_part, not extract: extract returns numeric (0.3 s more per million rows).
           floor(4 * ln(greatest(1.0, date_part('epoch', closed_at - reported_at) / 60.0))
                 / ln(2.0::float8))::smallint AS bucket,
           sum(sign) AS n
      FROM delta
     WHERE status = 'closed' AND closed_at IS NOT NULL
     GROUP BY 1, 2
),
close_times AS (
    INSERT INTO tiles.grid_close_times AS t (grid_id, bucket, n)
    SELECT o.owner_id, bucket, sum(n)
      FROM grid_close_buckets JOIN owners o USING (grid_id)
     GROUP BY 1, 2
    HAVING sum(n) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, bucket) DO UPDATE SET n = t.n + excluded.n
),
-- Open incidents by the hour of their due time; days and months are sums of hours.
owner_due_hours AS (
    SELECT o.owner_id, h.due_hour, sum(h.n) AS n
      FROM (SELECT grid_id, date_trunc('hour', due_at) AS due_hour, sum(sign) AS n
              FROM delta
             WHERE open AND due_at IS NOT NULL
             GROUP BY 1, 2) AS h
      JOIN owners o USING (grid_id)
     GROUP BY 1, 2
),
open_due_hours AS (
    INSERT INTO tiles.grid_open_due_hour AS t (grid_id, due_hour, n)
    SELECT owner_id, due_hour, n FROM owner_due_hours
     WHERE n <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_hour) DO UPDATE SET n = t.n + excluded.n
),
open_due AS (
    INSERT INTO tiles.grid_open_due AS t (grid_id, due_day, n)
    SELECT owner_id, (due_hour AT TIME ZONE 'UTC')::date, sum(n)
      FROM owner_due_hours
     GROUP BY 1, 2
    HAVING sum(n) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_day) DO UPDATE SET n = t.n + excluded.n
),
open_due_months AS (
    INSERT INTO tiles.grid_open_due_month AS t (grid_id, due_month, n)
    SELECT owner_id, date_trunc('month', due_hour AT TIME ZONE 'UTC')::date, sum(n)
      FROM owner_due_hours
     GROUP BY 1, 2
    HAVING sum(n) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_month) DO UPDATE SET n = t.n + excluded.n
)
SELECT 1
$sql$,
    source,
    finest.level, 20 - finest.level,
    (SELECT string_agg(format(
         'c%1$s AS (SELECT cx >> 2 AS cx, cy >> 2 AS cy, category_code, sum(n) AS n, sum(n_open) AS n_open'
         ' FROM c%2$s GROUP BY 1, 2, 3)', level, level + 2), ', ' ORDER BY level DESC)
       FROM tiles.pyramid_levels WHERE level < finest.level),
    (SELECT string_agg(format('SELECT %1$s AS level, * FROM c%1$s', level), ' UNION ALL ')
       FROM tiles.pyramid_levels),
    detail_finest.level, 20 - detail_finest.level,
    (SELECT string_agg(format(
         'd%1$s AS (SELECT cx >> 2 AS cx, cy >> 2 AS cy, category_code, status, month, sum(n) AS n'
         ' FROM d%2$s GROUP BY 1, 2, 3, 4, 5)', level, level + 2), ', ' ORDER BY level DESC)
       FROM tiles.pyramid_levels WHERE level < detail_finest.level),
    (SELECT string_agg(format('SELECT %1$s AS level, * FROM d%1$s', level), ' UNION ALL ')
       FROM tiles.pyramid_levels WHERE level <= detail_finest.level),
    -- H3 cells: the finest from each row, every coarser one from the one below.
    tiles.h3_finest(),
    (SELECT string_agg(format(
         'h%1$s AS (SELECT tiles.h3_parent(cell, %1$s) AS cell, category_code, sum(n) AS n'
         ' FROM h%2$s GROUP BY 1, 2)', res, res + 1), ', ' ORDER BY res DESC)
       FROM tiles.h3_levels WHERE res < tiles.h3_finest()),
    (SELECT string_agg(format('SELECT * FROM h%1$s', res), ' UNION ALL ') FROM tiles.h3_levels),
    tiles.h3_detail_finest(),
    (SELECT string_agg(format(
         'hd%1$s AS (SELECT tiles.h3_parent(cell, %1$s) AS cell, category_code, status, month, sum(n) AS n'
         ' FROM hd%2$s GROUP BY 1, 2, 3, 4)', res, res + 1), ', ' ORDER BY res DESC)
       FROM tiles.h3_levels WHERE res < tiles.h3_detail_finest()),
    (SELECT string_agg(format('SELECT * FROM hd%1$s', res), ' UNION ALL ')
       FROM tiles.h3_levels WHERE res <= tiles.h3_detail_finest())
)
  FROM (SELECT max(level) AS level FROM tiles.pyramid_levels) AS finest,
       -- The quadtree detail rollup stops at level 14 (finer cells hold nearly a row per incident).
       (SELECT 14 AS level) AS detail_finest
$fn$;

-- ## The change log (tiles.change_events)

-- A statement that touched more incidents than this is logged as one 'bulk' change with its
-- bounding box, and folds its own rows instead of queueing them.
CREATE OR REPLACE FUNCTION tiles.bulk_threshold() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 1000';

-- The statement that logs a set of incident rows; returns the first and last event id.
CREATE OR REPLACE FUNCTION tiles.change_log_sql(kind text, source text, changed integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
SELECT CASE WHEN changed > tiles.bulk_threshold() THEN format($sql$
    INSERT INTO tiles.change_events (kind, bbox, count)
    SELECT 'bulk', ARRAY[ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)], %s
      FROM (SELECT ST_Extent(s.geom)::geometry AS e FROM (%s) s) x
    RETURNING id, id$sql$, changed, source)
ELSE format($sql$
    WITH inserted AS (
        INSERT INTO tiles.change_events (kind, incident_id, status, lon, lat, grid_ids)
        SELECT %L, s.id, s.status, ST_X(s.geom), ST_Y(s.geom),
               string_to_array(ltree2text(g.path), '.')::integer[]
          FROM (%s) s JOIN grids g ON g.id = s.grid_id
         ORDER BY s.id
        RETURNING id)
    SELECT min(id), max(id) FROM inserted$sql$, kind, source)
END
$fn$;

-- ## Triggers on incidents, and the fold of their queue

-- Transition tables are visible only to statements run by the trigger function itself, so the
-- bulk statements are built as text by the functions above and EXECUTEd here. The NOTIFY payload
-- names an id range only (payloads are limited to 8000 bytes); listeners read the rows.

-- A small statement queues its rows; a large one folds them at once and logs one 'bulk' change.
-- The queueing is static SQL: PL/pgSQL keeps the plans of static statements for the session,
-- while EXECUTE would plan the count and the INSERT again on every filing (about 0.5 ms of the
-- 1.2 ms an incident INSERT took that way; now 0.7-0.9 ms, against 0.65-0.8 ms with no trigger).
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

CREATE OR REPLACE TRIGGER incidents_inserted_tiles AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.incidents_changed();
CREATE OR REPLACE TRIGGER incidents_updated_tiles AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiles.incidents_changed();
CREATE OR REPLACE TRIGGER incidents_deleted_tiles AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.incidents_changed();

-- Fold the queued changes into the rollups and the change log, and tell the listeners.
-- Returns how many queued rows it folded (0 when another fold is running: it will see them).
-- The rows are taken with DELETE ... RETURNING, so a change still uncommitted stays queued for
-- the next fold, and two folds never take the same row.
CREATE OR REPLACE FUNCTION tiles.fold_pending(batch integer DEFAULT 10000) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    taken tiles.pending_changes[];
    logged integer;
    first_id bigint;
    last_id bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('gridwatch.tiles.fold_pending')) THEN
        RETURN 0;
    END IF;
    WITH oldest AS (
        SELECT id FROM tiles.pending_changes ORDER BY id LIMIT batch
    ), removed AS (
        DELETE FROM tiles.pending_changes p USING oldest WHERE p.id = oldest.id RETURNING p.*
    )
    SELECT array_agg(ROW(removed.*)::tiles.pending_changes ORDER BY removed.id) INTO taken FROM removed;
    IF taken IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE tiles.incident_delta_sql('SELECT * FROM unnest($1)') USING taken;
    SELECT count(*) INTO logged FROM unnest(taken) WHERE kind IS NOT NULL;
    IF logged > tiles.bulk_threshold() THEN
        INSERT INTO tiles.change_events (kind, bbox, count)
        SELECT 'bulk', ARRAY[ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)], logged
          FROM (SELECT ST_Extent(geom)::geometry AS e FROM unnest(taken)) AS x
        RETURNING id, id INTO first_id, last_id;
    ELSIF logged > 0 THEN
        WITH inserted AS (
            INSERT INTO tiles.change_events (kind, incident_id, status, lon, lat, grid_ids)
            SELECT p.kind, p.incident_id, p.status, ST_X(p.geom), ST_Y(p.geom),
                   string_to_array(ltree2text(g.path), '.')::integer[]
              FROM unnest(taken) AS p LEFT JOIN grids g ON g.id = p.grid_id
             WHERE p.kind IS NOT NULL
             ORDER BY p.id
            RETURNING id
        )
        SELECT min(id), max(id) INTO first_id, last_id FROM inserted;
    END IF;
    IF first_id IS NOT NULL THEN
        PERFORM pg_notify('gridwatch_changes',
                          json_build_object('kind', 'incidents', 'first', first_id, 'last', last_id)::text);
    END IF;
    RETURN cardinality(taken);
END $fn$;

-- ## Patrols and grids

-- Patrols change the coverage layer; grids (import, member assignment) change every grid layer.
-- Neither is in the incident feed: the payload carries what a listener needs.
CREATE OR REPLACE FUNCTION tiles.patrols_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    grid_ids integer[];
BEGIN
    SELECT array_agg(DISTINCT grid_id) INTO grid_ids FROM new_rows;
    IF cardinality(grid_ids) > 500 THEN
        grid_ids := NULL;  -- too many for one payload: listeners drop every coverage tile
    END IF;
    PERFORM pg_notify('gridwatch_changes',
                      json_build_object('kind', 'patrols', 'grid_ids', grid_ids)::text);
    RETURN NULL;
END $fn$;

CREATE OR REPLACE TRIGGER patrols_inserted_tiles AFTER INSERT ON patrols
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.patrols_changed();

CREATE OR REPLACE FUNCTION tiles.grids_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('gridwatch_changes', json_build_object('kind', 'grids')::text);
    RETURN NULL;
END $fn$;

CREATE OR REPLACE TRIGGER grids_changed_tiles AFTER INSERT OR UPDATE OR DELETE ON grids
    FOR EACH STATEMENT EXECUTE FUNCTION tiles.grids_changed();
