-- The incidents layer and the fold that keeps every incident rollup current
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).
--
-- tiles.incident_delta_sql(source) is the one statement that folds incident changes into every
-- rollup: `source` yields incident rows with a `sign` (+1 for a new row version, -1 for an old
-- one), and the statement adds their counts to the quadtree cells (per category, and in total),
-- the detail cells (status, month), the H3 cells (and the outlines of new ones), and the grid
-- numbers of each grid and its ancestors. Why each rollup exists: docs/tiles.md.

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

-- Incident counts of tile (z, x, y) per output cell (cx, cy) of level `out_level`
-- (z <= out_level), read from the pyramid (finest level 18): from the per-cell totals when no
-- filter is set, else from the per-category rows. Status or period filters need the detail
-- rollup, which stops at level 14, so filtered cells are never finer than that.
DROP FUNCTION IF EXISTS tiles.cell_counts(integer, integer, integer, integer, text[], text[], date, date);
CREATE FUNCTION tiles.cell_counts(
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
