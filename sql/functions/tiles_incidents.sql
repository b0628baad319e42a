-- The incidents layer: its points zoomed in, counts per quadtree cell zoomed out, read from the
-- rollups that tiles_changes.sql keeps
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- Zoomed in, a tile lists its incidents one by one, unless it holds more than this many:
-- then it keeps showing counts per cell, so no tile grows past the size budget.
CREATE OR REPLACE FUNCTION tiles.points_limit() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 4000';

-- Incident counts of tile (z, x, y) per output cell (cx, cy) of level `out_level`
-- (z <= out_level), read from the pyramid (finest level 18): from the per-cell totals when no
-- filter is set, else from the per-category rows. Status or period filters need the detail
-- rollup, which stops at level 14, so filtered cells are never finer than that.
CREATE OR REPLACE FUNCTION tiles.cell_counts(
    z integer, x integer, y integer, out_level integer,
    category text[], status text[], period_start date, period_end date)
RETURNS TABLE (cx integer, cy integer, level integer, n bigint, n_open bigint)
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
    IF NOT detailed AND category IS NULL THEN
        RETURN QUERY
        SELECT c.cx >> (source_level - o), c.cy >> (source_level - o), o, sum(c.n), sum(c.n_open)
          FROM tiles.incident_cell_totals c
         WHERE c.level = source_level
           AND c.bx BETWEEN cx_min >> 6 AND cx_max >> 6 AND c.by BETWEEN cy_min >> 6 AND cy_max >> 6
           AND c.cx BETWEEN cx_min AND cx_max AND c.cy BETWEEN cy_min AND cy_max
         GROUP BY 1, 2
        HAVING sum(c.n) > 0;
    ELSIF NOT detailed THEN
        RETURN QUERY
        SELECT c.cx >> (source_level - o), c.cy >> (source_level - o), o, sum(c.n), sum(c.n_open)
          FROM tiles.incident_cells c
         WHERE c.level = source_level
           AND c.bx BETWEEN cx_min >> 6 AND cx_max >> 6 AND c.by BETWEEN cy_min >> 6 AND cy_max >> 6
           AND c.cx BETWEEN cx_min AND cx_max AND c.cy BETWEEN cy_min AND cy_max
           AND c.category_code = ANY (cell_counts.category)
         GROUP BY 1, 2
        HAVING sum(c.n) > 0;
    ELSE
        RETURN QUERY
        SELECT c.cx >> (source_level - o), c.cy >> (source_level - o), o,
               sum(c.n), sum(c.n) FILTER (WHERE c.status NOT IN ('closed', 'rejected'))
          FROM tiles.incident_cells_detail c
         WHERE c.level = source_level
           AND c.bx BETWEEN cx_min >> 6 AND cx_max >> 6 AND c.by BETWEEN cy_min >> 6 AND cy_max >> 6
           AND c.cx BETWEEN cx_min AND cx_max AND c.cy BETWEEN cy_min AND cy_max
           AND (cell_counts.category IS NULL OR c.category_code = ANY (cell_counts.category))
           AND (cell_counts.status IS NULL OR c.status = ANY (cell_counts.status))
           AND (period_start IS NULL OR c.month >= period_start)
           AND (period_end IS NULL OR c.month < period_end)
         GROUP BY 1, 2
        HAVING sum(c.n) > 0;
    END IF;
END $fn$;

-- The incidents layer: its points zoomed in, counts per cell zoomed out.
-- Two more arguments than the other layers (layers/catalog.py: `scoped`): the grids
-- (`scope_grids`, an inspector's grids and every grid below) or the department
-- (`scope_department`) whose incidents the viewer may read; NULL where the scope does not limit.
-- Counts per cell stay county-wide: every role that reads the layer may see counts.
CREATE OR REPLACE FUNCTION tiles.incidents(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text, scope_grids integer[], scope_department integer)
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
                   AND (scope_grids IS NULL OR i.grid_id = ANY (scope_grids))
                   AND (scope_department IS NULL OR i.department_id = scope_department)
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
