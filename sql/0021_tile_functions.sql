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
        -- 32 x 32 cells of 128 px per tile, each drawn at its centre with its count.
        SELECT ST_AsMVT(t, 'incidents', 4096, 'geom') INTO tile
          FROM (SELECT ST_Point(((c.cx - (x << (c.level - z))) + 0.5) * (4096 >> (c.level - z)),
                                ((c.cy - (y << (c.level - z))) + 0.5) * (4096 >> (c.level - z))) AS geom,
                       sum(c.n)::integer AS count, sum(c.n_open)::integer AS open
                  FROM tiles.cell_counts(z, x, y, least(z + 5, 18), category, status,
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

-- Open incidents past their due time in each shown grid (descendants included). Depends on the
-- clock, so it is counted when the tile is built (the partial index on open due_at).
CREATE FUNCTION tiles.open_overdue(shown_paths ltree[]) RETURNS TABLE (path ltree, n bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT p.path, count(*)
      FROM incidents i
      JOIN grids g ON g.id = i.grid_id
      JOIN unnest(shown_paths) AS p(path) ON g.path <@ p.path
     WHERE i.status NOT IN ('closed', 'rejected') AND i.due_at < now()
     GROUP BY p.path
$fn$;

CREATE FUNCTION tiles.grids(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT g.* FROM grids g
         WHERE g.level = tiles.grid_level(z) AND g.geom && tiles.envelope_4326(z, x, y)
    ), overdue AS (
        SELECT * FROM tiles.open_overdue(ARRAY(SELECT path FROM shown))
    )
    SELECT coalesce(ST_AsMVT(t, 'grids', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   s.id, s.code, s.name_zh AS name, s.level,
                   s.member_id IS NOT NULL AS has_member,
                   CASE WHEN role IN ('inspector', 'operator', 'leader', 'admin') THEN u.display_name END
                       AS member,
                   coalesce(st.open_count, 0) AS open,
                   coalesce(st.closed_due - st.closed_on_time, 0) + coalesce(o.n, 0)::integer AS overdue
              FROM shown s
              LEFT JOIN users u ON u.id = s.member_id
              LEFT JOIN tiles.grid_stats st ON st.grid_id = s.id
              LEFT JOIN overdue o ON o.path = s.path) t
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
