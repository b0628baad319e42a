-- Rollups behind the zoomed-out tiles, kept up to date by statement-level triggers on incidents,
-- and the change log that drives tile-cache invalidation (LISTEN/NOTIFY) and the SSE feed.
-- See docs/tiles.md. Every writer (workflow API, demo generator, importer, psql) goes through
-- these triggers, so no code path can leave a rollup or a cached tile behind.
CREATE SCHEMA tiles;

-- The cell hierarchy is the Web Mercator quadtree: the cell of a point at level L is the
-- slippy-map tile (cx, cy) at zoom L. Cells nest exactly (four children per parent) and line up
-- with tile edges, so a tile reads whole cells. PostGIS has no H3 and Debian ships no h3-pg.
-- The pyramid stores the even levels 6..18 (level 18: about 130 m cells here); `bx, by` is the cell's ancestor at level - 6, so the
-- cells of one tile are one index range.
CREATE FUNCTION tiles.cell_x(lon double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(1048575, greatest(0, floor((lon + 180.0) / 360.0 * 1048576.0)))::integer
$$;

CREATE FUNCTION tiles.cell_y(lat double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(1048575, greatest(0, floor(
        (1.0 - ln(tan(radians(lat)) + 1.0 / cos(radians(lat))) / pi()) / 2.0 * 1048576.0)))::integer
$$;

CREATE TABLE tiles.pyramid_levels (level smallint PRIMARY KEY CHECK (level BETWEEN 6 AND 18 AND level % 2 = 0));
INSERT INTO tiles.pyramid_levels SELECT generate_series(6, 18, 2);

-- Counts per cell and category: what unfiltered and category-filtered tiles read.
CREATE TABLE tiles.incident_cells (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    n_open integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy, category_code)
);

-- Counts per cell, category, status and month of report: what status/period-filtered tiles read.
-- Stored up to level 14 only (about 2 km cells): finer levels hold nearly a row per incident.
CREATE TABLE tiles.incident_cells_detail (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy, category_code, status, month)
);

-- Per grid and every ancestor (so a township's numbers are one row): counts for the grids and
-- response layers. Overdue open incidents depend on the clock and are counted when a tile is built.
CREATE TABLE tiles.grid_stats (
    grid_id integer PRIMARY KEY REFERENCES grids (id) ON DELETE CASCADE,
    incidents integer NOT NULL DEFAULT 0,
    open_count integer NOT NULL DEFAULT 0,
    closed_count integer NOT NULL DEFAULT 0,
    closed_due integer NOT NULL DEFAULT 0,
    closed_on_time integer NOT NULL DEFAULT 0
);

-- Time to close as a histogram of quarter-octave buckets of minutes: bucket b holds durations
-- in [2^(b/4), 2^((b+1)/4)) minutes, so a median read from it is within 19 %.
CREATE TABLE tiles.grid_close_times (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    bucket smallint NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, bucket)
);

-- The statement that folds a set of signed incident rows (+1 new state, -1 old state) into every
-- rollup. `source` is a query yielding `sign` plus the incidents columns; the trigger passes its
-- transition tables, the migration backfill the whole table. Rows are upserted in key order so
-- concurrent writers take row locks in the same order.
CREATE FUNCTION tiles.incident_delta_sql(source text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
SELECT format($sql$
WITH delta AS (
    SELECT s.sign, s.grid_id, s.category_code COLLATE "C" AS category_code, s.status COLLATE "C" AS status,
           s.status NOT IN ('closed', 'rejected') AS open,
           date_trunc('month', s.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
           tiles.cell_x(ST_X(s.geom)) AS cx20, tiles.cell_y(ST_Y(s.geom)) AS cy20,
           s.closed_at, s.due_at, s.reported_at
      FROM (%s) AS s
), per_level AS (
    SELECT d.*, l.level, d.cx20 >> (20 - l.level) AS cx, d.cy20 >> (20 - l.level) AS cy
      FROM delta d CROSS JOIN tiles.pyramid_levels l
), cells AS (
    INSERT INTO tiles.incident_cells AS c (level, bx, by, cx, cy, category_code, n, n_open)
    SELECT level, cx >> 6, cy >> 6, cx, cy, category_code,
           sum(sign), coalesce(sum(sign) FILTER (WHERE open), 0)
      FROM per_level
     GROUP BY level, cx, cy, category_code
    HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE open), 0) <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy, category_code
    ON CONFLICT (level, bx, by, cx, cy, category_code)
    DO UPDATE SET n = c.n + excluded.n, n_open = c.n_open + excluded.n_open
), detail AS (
    INSERT INTO tiles.incident_cells_detail AS c (level, bx, by, cx, cy, category_code, status, month, n)
    SELECT level, cx >> 6, cy >> 6, cx, cy, category_code, status, month, sum(sign)
      FROM per_level
     WHERE level <= 14
     GROUP BY level, cx, cy, category_code, status, month
    HAVING sum(sign) <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy, category_code, status, month
    ON CONFLICT (level, bx, by, cx, cy, category_code, status, month)
    DO UPDATE SET n = c.n + excluded.n
), per_grid AS (
    SELECT d.*, a.grid_id AS owner_id
      FROM delta d
      JOIN grids g ON g.id = d.grid_id
      CROSS JOIN LATERAL unnest(string_to_array(ltree2text(g.path), '.')::integer[]) AS a(grid_id)
), stats AS (
    INSERT INTO tiles.grid_stats AS t
           (grid_id, incidents, open_count, closed_count, closed_due, closed_on_time)
    SELECT owner_id, sum(sign),
           coalesce(sum(sign) FILTER (WHERE open), 0),
           coalesce(sum(sign) FILTER (WHERE status = 'closed'), 0),
           coalesce(sum(sign) FILTER (WHERE status = 'closed' AND due_at IS NOT NULL), 0),
           coalesce(sum(sign) FILTER (WHERE status = 'closed' AND closed_at <= due_at), 0)
      FROM per_grid
     GROUP BY owner_id
     ORDER BY owner_id
    ON CONFLICT (grid_id) DO UPDATE SET
        incidents = t.incidents + excluded.incidents,
        open_count = t.open_count + excluded.open_count,
        closed_count = t.closed_count + excluded.closed_count,
        closed_due = t.closed_due + excluded.closed_due,
        closed_on_time = t.closed_on_time + excluded.closed_on_time
), close_times AS (
    INSERT INTO tiles.grid_close_times AS t (grid_id, bucket, n)
    SELECT owner_id,
           floor(4 * ln(greatest(1.0, extract(epoch FROM closed_at - reported_at)::float8 / 60.0))
                 / ln(2.0))::smallint,
           sum(sign)
      FROM per_grid
     WHERE status = 'closed' AND closed_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, bucket) DO UPDATE SET n = t.n + excluded.n
)
SELECT 1
$sql$, source)
$fn$;

-- The change log: one row per created/changed/deleted incident, or one 'bulk' row (with the
-- bounding box) for a statement that touched more than tiles.bulk_threshold() incidents, such
-- as a demo load. Its ids are the SSE event ids.
CREATE TABLE tiles.change_events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL CHECK (kind IN ('created', 'changed', 'deleted', 'bulk')),
    incident_id bigint,
    status text,
    lon double precision,
    lat double precision,
    -- The incident's grid and its ancestors: the polygons whose numbers changed.
    grid_ids integer[],
    bbox double precision[] CHECK (bbox IS NULL OR cardinality(bbox) = 4),
    count integer NOT NULL DEFAULT 1
);
CREATE INDEX change_events_at_idx ON tiles.change_events (at);

CREATE FUNCTION tiles.bulk_threshold() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 1000';

-- The statement that logs a set of incident rows; returns the first and last event id.
CREATE FUNCTION tiles.change_log_sql(kind text, source text, changed integer) RETURNS text
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

-- Transition tables are visible only to statements run by the trigger function itself, so the
-- statements are built as text by the functions above and EXECUTEd here. The NOTIFY payload
-- names an id range only (payloads are limited to 8000 bytes); listeners read the rows.
CREATE FUNCTION tiles.incidents_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
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
        kind := 'created';
        rows_source := 'SELECT * FROM new_rows';
        delta_source := 'SELECT 1 AS sign, n.* FROM new_rows n';
    ELSIF TG_OP = 'DELETE' THEN
        kind := 'deleted';
        rows_source := 'SELECT * FROM old_rows';
        delta_source := 'SELECT -1 AS sign, o.* FROM old_rows o';
    ELSE
        kind := 'changed';
        rows_source := 'SELECT * FROM new_rows';
        delta_source := format(
            'SELECT -1 AS sign, o.* FROM old_rows o JOIN new_rows n USING (id) WHERE %1$s
             UNION ALL
             SELECT 1 AS sign, n.* FROM new_rows n JOIN old_rows o USING (id) WHERE %1$s',
            changed_rows);
    END IF;
    EXECUTE format('SELECT count(*) FROM (%s) s', rows_source) INTO changed;
    IF changed = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE tiles.incident_delta_sql(delta_source);
    EXECUTE tiles.change_log_sql(kind, rows_source, changed) INTO first_id, last_id;
    PERFORM pg_notify('gridwatch_changes',
                      json_build_object('kind', 'incidents', 'first', first_id, 'last', last_id)::text);
    RETURN NULL;
END $fn$;

CREATE TRIGGER incidents_inserted_tiles AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.incidents_changed();
CREATE TRIGGER incidents_updated_tiles AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiles.incidents_changed();
CREATE TRIGGER incidents_deleted_tiles AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.incidents_changed();

-- Patrols change the coverage layer; grids (import, member assignment) change every grid layer.
-- Neither is in the incident feed: the payload carries what a listener needs.
CREATE FUNCTION tiles.patrols_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
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

CREATE TRIGGER patrols_inserted_tiles AFTER INSERT ON patrols
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.patrols_changed();

CREATE FUNCTION tiles.grids_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('gridwatch_changes', json_build_object('kind', 'grids')::text);
    RETURN NULL;
END $fn$;

CREATE TRIGGER grids_changed_tiles AFTER INSERT OR UPDATE OR DELETE ON grids
    FOR EACH STATEMENT EXECUTE FUNCTION tiles.grids_changed();

-- Incidents that existed before this migration.
DO $$ BEGIN EXECUTE tiles.incident_delta_sql('SELECT 1 AS sign, i.* FROM incidents i'); END $$;
