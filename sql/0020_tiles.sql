-- The map tiles (docs/tiles.md): the rollups behind the zoomed-out tiles, kept up to date by
-- statement-level triggers on incidents; the change log that drives tile-cache invalidation
-- (LISTEN/NOTIFY) and the SSE feed; and one function per map layer. Every writer (workflow API,
-- demo generator, importer, psql) goes through these triggers, so no code path can leave a
-- rollup or a cached tile behind.

-- ## Rollups

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
-- A tile reads one contiguous key range of a cell rollup; with the counts in the primary key
-- (INCLUDE) that is an index-only scan of neighbouring index pages instead of one heap page per
-- cell (cells are inserted in random order, so their heap rows are scattered).
CREATE TABLE tiles.incident_cells (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    n_open integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy, category_code) INCLUDE (n, n_open)
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
    PRIMARY KEY (level, bx, by, cx, cy, category_code, status, month) INCLUDE (n)
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

-- Open incidents past their due time depend on the clock, yet a tile must not read every open
-- incident (10,000,000 incidents: thousands due each day). Open incidents are counted per grid
-- (and ancestor) in UTC buckets of due_at: months, days and hours. A grid's overdue count is the
-- months before this one, the days of this month before today, the hours of today before this
-- one, and only the current hour from incidents (the partial index on open due_at finds it):
-- at most about 80 rows per grid. tiles.incident_delta_sql keeps all three up to date.
CREATE TABLE tiles.grid_open_due (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_day date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_day)
);

CREATE TABLE tiles.grid_open_due_month (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_month)
);

CREATE TABLE tiles.grid_open_due_hour (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_hour timestamptz NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_hour)
);

-- The statement that folds a set of signed incident rows (+1 new state, -1 old state) into every
-- rollup. `source` is a query yielding `sign` plus the incidents columns; the trigger passes its
-- transition tables (a backfill would pass the whole table). Rows are upserted in key order so
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
), open_due AS (
    INSERT INTO tiles.grid_open_due AS t (grid_id, due_day, n)
    SELECT owner_id, (due_at AT TIME ZONE 'UTC')::date, sum(sign)
      FROM per_grid
     WHERE open AND due_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_day) DO UPDATE SET n = t.n + excluded.n
), open_due_hours AS (
    INSERT INTO tiles.grid_open_due_hour AS t (grid_id, due_hour, n)
    SELECT owner_id, date_trunc('hour', due_at), sum(sign)
      FROM per_grid
     WHERE open AND due_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_hour) DO UPDATE SET n = t.n + excluded.n
), open_due_months AS (
    INSERT INTO tiles.grid_open_due_month AS t (grid_id, due_month, n)
    SELECT owner_id, date_trunc('month', due_at AT TIME ZONE 'UTC')::date, sum(sign)
      FROM per_grid
     WHERE open AND due_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_month) DO UPDATE SET n = t.n + excluded.n
)
SELECT 1
$sql$, source)
$fn$;

-- ## Change log and triggers

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

-- ## Layer functions

-- One function per map layer, one signature for all (layers/catalog.py lists them):
--   tiles.<layer>(z, x, y, category text[], status text[], period_start date, period_end date, role text)
--   RETURNS bytea  -- one Mapbox Vector Tile layer; empty when the tile has no feature.
-- A NULL filter means "no filter"; period_end is exclusive. Layers ignore filters they do not
-- list in the catalog. Properties a role may not read are left out here, by `role`.

-- The grid level a grid layer shows at a zoom.
CREATE FUNCTION tiles.grid_level(z integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN z < 10 THEN 'township' WHEN z < 13 THEN 'village' ELSE 'grid' END
$$;

-- A tile's envelope in EPSG:4326, where incidents and grids are indexed. Web Mercator keeps
-- meridians and parallels straight, so the transformed rectangle is exact.
CREATE FUNCTION tiles.envelope_4326(z integer, x integer, y integer) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_Transform(ST_TileEnvelope(z, x, y), 4326)
$$;

-- Incident counts of tile (z, x, y) per output cell (ox, oy) of level `out_level` (z <= out_level),
-- read from the pyramid (finest level 18). Status or period filters need the detail rollup,
-- which stops at level 14, so filtered cells are never finer than that.
CREATE FUNCTION tiles.cell_counts(
    z integer, x integer, y integer, out_level integer,
    category text[], status text[], period_start date, period_end date)
RETURNS TABLE (cx integer, cy integer, level integer, category_code text, n bigint, n_open bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
DECLARE
    detailed constant boolean := status IS NOT NULL OR period_start IS NOT NULL OR period_end IS NOT NULL;
    o constant integer := least(out_level, CASE WHEN detailed THEN 14 ELSE 18 END);
    source_level constant integer := o + o % 2;
    shift constant integer := source_level - z;
    cx_min constant integer := x << shift;
    cx_max constant integer := ((x + 1) << shift) - 1;
    cy_min constant integer := y << shift;
    cy_max constant integer := ((y + 1) << shift) - 1;
BEGIN
    IF NOT detailed THEN
        RETURN QUERY
        SELECT c.cx >> (source_level - o), c.cy >> (source_level - o), o, c.category_code,
               sum(c.n), sum(c.n_open)
          FROM tiles.incident_cells c
         WHERE c.level = source_level
           AND c.bx BETWEEN cx_min >> 6 AND cx_max >> 6 AND c.by BETWEEN cy_min >> 6 AND cy_max >> 6
           AND c.cx BETWEEN cx_min AND cx_max AND c.cy BETWEEN cy_min AND cy_max
           AND (cell_counts.category IS NULL OR c.category_code = ANY (cell_counts.category))
         GROUP BY 1, 2, 4
        HAVING sum(c.n) > 0;
    ELSE
        RETURN QUERY
        SELECT c.cx >> (source_level - o), c.cy >> (source_level - o), o, c.category_code,
               sum(c.n), sum(c.n) FILTER (WHERE c.status NOT IN ('closed', 'rejected'))
          FROM tiles.incident_cells_detail c
         WHERE c.level = source_level
           AND c.bx BETWEEN cx_min >> 6 AND cx_max >> 6 AND c.by BETWEEN cy_min >> 6 AND cy_max >> 6
           AND c.cx BETWEEN cx_min AND cx_max AND c.cy BETWEEN cy_min AND cy_max
           AND (cell_counts.category IS NULL OR c.category_code = ANY (cell_counts.category))
           AND (cell_counts.status IS NULL OR c.status = ANY (cell_counts.status))
           AND (period_start IS NULL OR c.month >= period_start)
           AND (period_end IS NULL OR c.month < period_end)
         GROUP BY 1, 2, 4
        HAVING sum(c.n) > 0;
    END IF;
END $fn$;

-- Zoomed in, a tile lists its incidents one by one, unless it holds more than this many:
-- then it keeps showing counts per cell, so no tile grows past the size budget.
CREATE FUNCTION tiles.points_limit() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 4000';

-- Zoomed out, cells are read from the even pyramid level matching the output level (the largest
-- even level <= z + 5), never folded from a finer one, so a tile aggregates at most 32 x 32 cells
-- per category (reading 64 x 64 at even zooms and folding them 2 x 2 was the slowest tile at
-- 10,000,000 incidents).
CREATE FUNCTION tiles.incidents(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
DECLARE
    tile bytea;
    in_tile bigint;
BEGIN
    IF z >= 15 THEN
        -- Upper bound from the category rollup (status and period can only lower it).
        SELECT coalesce(sum(c.n), 0) INTO in_tile FROM tiles.cell_counts(z, x, y, z, category, NULL, NULL, NULL) c;
    END IF;
    IF z >= 15 AND in_tile <= tiles.points_limit() THEN
        SELECT ST_AsMVT(t, 'incidents', 4096, 'geom', 'id') INTO tile
          FROM (SELECT ST_AsMVTGeom(ST_Transform(i.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 0, true) AS geom,
                       i.id, i.category_code AS category, i.status, i.priority,
                       floor(extract(epoch FROM now() - i.reported_at) / 3600)::integer AS age_h
                  FROM incidents i
                 WHERE i.geom && tiles.envelope_4326(z, x, y)
                   AND (incidents.category IS NULL OR i.category_code = ANY (incidents.category))
                   AND (incidents.status IS NULL OR i.status = ANY (incidents.status))
                   AND (period_start IS NULL
                        OR i.reported_at >= period_start::timestamp AT TIME ZONE 'Asia/Shanghai')
                   AND (period_end IS NULL
                        OR i.reported_at < period_end::timestamp AT TIME ZONE 'Asia/Shanghai')) t
         WHERE t.geom IS NOT NULL;
    ELSE
        -- Cells of the largest even level <= z + 5, read without a finer level below them:
        -- 32 x 32 cells of 128 px at odd zooms, 16 x 16 of 256 px at even ones.
        SELECT ST_AsMVT(t, 'incidents', 4096, 'geom') INTO tile
          FROM (SELECT ST_Point(((c.cx - (x << (c.level - z))) + 0.5) * (4096 >> (c.level - z)),
                                ((c.cy - (y << (c.level - z))) + 0.5) * (4096 >> (c.level - z))) AS geom,
                       sum(c.n)::integer AS count, sum(c.n_open)::integer AS open
                  FROM tiles.cell_counts(z, x, y, least(z + 5 - (z + 5) % 2, 18), category, status,
                                         period_start, period_end) c
                 GROUP BY c.cx, c.cy, c.level) t;
    END IF;
    RETURN coalesce(tile, ''::bytea);
END $fn$;

-- Heatmap squares (16 x 16 per tile) with the total and one count per category.
CREATE FUNCTION tiles.incident_density(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(ST_AsMVT(t, 'incident_density', 4096, 'geom'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_TileEnvelope(c.level, c.cx, c.cy), ST_TileEnvelope(z, x, y), 4096, 0, true)
                       AS geom,
                   sum(c.n)::integer AS count,
                   jsonb_object_agg(c.category_code, c.n) AS by_category
              FROM tiles.cell_counts(z, x, y, least(z + 4, 18), category, status, period_start, period_end) c
             GROUP BY c.cx, c.cy, c.level) t
$fn$;

-- Open overdue incidents per shown grid (descendants included), from the due_at rollups above.
CREATE FUNCTION tiles.open_overdue(grid_ids integer[]) RETURNS TABLE (grid_id integer, n bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH bounds AS (
        SELECT (now() AT TIME ZONE 'UTC')::date AS today,
               date_trunc('month', now() AT TIME ZONE 'UTC')::date AS month_start,
               date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS today_start,
               date_trunc('hour', now()) AS hour_start
    ), shown AS (
        SELECT g.id, g.path FROM grids g WHERE g.id = ANY (grid_ids)
    ), counted AS (
        SELECT m.grid_id, m.n
          FROM tiles.grid_open_due_month m, bounds b
         WHERE m.grid_id = ANY (grid_ids) AND m.due_month < b.month_start
        UNION ALL
        SELECT d.grid_id, d.n
          FROM tiles.grid_open_due d, bounds b
         WHERE d.grid_id = ANY (grid_ids) AND d.due_day >= b.month_start AND d.due_day < b.today
        UNION ALL
        SELECT h.grid_id, h.n
          FROM tiles.grid_open_due_hour h, bounds b
         WHERE h.grid_id = ANY (grid_ids) AND h.due_hour >= b.today_start AND h.due_hour < b.hour_start
        UNION ALL
        SELECT s.id, c.n
          FROM (SELECT i.grid_id, count(*) AS n
                  FROM incidents i, bounds b
                 WHERE i.status NOT IN ('closed', 'rejected')
                   AND i.due_at >= greatest(b.hour_start, b.today_start) AND i.due_at < now()
                 GROUP BY i.grid_id) c
          JOIN grids g ON g.id = c.grid_id
          JOIN shown s ON g.path <@ s.path
    )
    SELECT s.id, coalesce(sum(c.n), 0)::bigint
      FROM shown s
      LEFT JOIN counted c ON c.grid_id = s.id
     GROUP BY s.id
$fn$;

-- In SQL functions a column name wins over a parameter of the same name: the `role` column of the
-- joined users row would shadow the caller's role and leak member names to every role, so the
-- parameter is referenced by position ($8 = role).
CREATE FUNCTION tiles.grids(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT g.* FROM grids g
         WHERE g.level = tiles.grid_level(z) AND g.geom && tiles.envelope_4326(z, x, y)
    ), overdue AS (
        SELECT * FROM tiles.open_overdue(ARRAY(SELECT id FROM shown))
    )
    SELECT coalesce(ST_AsMVT(t, 'grids', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   s.id, s.code, s.name_zh AS name, s.level,
                   s.member_id IS NOT NULL AS has_member,
                   CASE WHEN $8 IN ('inspector', 'operator', 'leader', 'admin') THEN u.display_name END
                       AS member,
                   coalesce(st.open_count, 0) AS open,
                   coalesce(st.closed_due - st.closed_on_time, 0) + coalesce(o.n, 0)::integer AS overdue
              FROM shown s
              LEFT JOIN users u ON u.id = s.member_id
              LEFT JOIN tiles.grid_stats st ON st.grid_id = s.id
              LEFT JOIN overdue o ON o.grid_id = s.id) t
     WHERE t.geom IS NOT NULL
$fn$;

CREATE FUNCTION tiles.coverage(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(ST_AsMVT(t, 'coverage', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   g.id, g.code, g.name_zh AS name,
                   g.member_id IS NOT NULL AS has_member,
                   floor(extract(epoch FROM now() - last.ended_at) / 86400)::integer AS days_since_patrol
              FROM grids g
              LEFT JOIN LATERAL (SELECT p.ended_at FROM patrols p WHERE p.grid_id = g.id
                                  ORDER BY p.started_at DESC LIMIT 1) last ON true
             WHERE g.level = 'grid' AND g.geom && tiles.envelope_4326(z, x, y)) t
     WHERE t.geom IS NOT NULL
$fn$;

-- Median time to close read from the histogram: the geometric middle of the median's bucket.
CREATE FUNCTION tiles.median_close_hours(grid integer) RETURNS real
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT round((power(2, (h.bucket + 0.5) / 4.0) / 60.0)::numeric, 1)::real
      FROM (SELECT t.bucket, sum(t.n) OVER (ORDER BY t.bucket) AS running, sum(t.n) OVER () AS total
              FROM tiles.grid_close_times t WHERE t.grid_id = grid AND t.n > 0) h
     WHERE h.running * 2 >= h.total
     ORDER BY h.bucket
     LIMIT 1
$fn$;

CREATE FUNCTION tiles.response(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(ST_AsMVT(t, 'response', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   g.id, g.code, g.name_zh AS name, g.level,
                   coalesce(st.closed_count, 0) AS closed,
                   tiles.median_close_hours(g.id) AS median_close_h,
                   round(st.closed_on_time::numeric / nullif(st.closed_due, 0), 3)::real AS on_time_rate
              FROM grids g
              LEFT JOIN tiles.grid_stats st ON st.grid_id = g.id
             WHERE g.level = tiles.grid_level(z) AND g.geom && tiles.envelope_4326(z, x, y)) t
     WHERE t.geom IS NOT NULL
$fn$;
