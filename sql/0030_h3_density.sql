-- The heatmap layer draws H3 hexagons (docs/tiles.md, "The density layer: H3 hexagons").
--
-- PostGIS has no H3 and Debian ships no h3-pg extension, so the H3 functions run Uber's `h3`
-- package (the one gridwatch's Python code uses, pinned in pyproject.toml) inside the database
-- through PL/Python; scripts/system-packages.sh installs it for Debian's python3. The database
-- computes every cell, so no writer (API, demo, importer, psql) can leave the hexagons behind.
--
-- Only two things need the library: an incident's finest cell (resolution 10, about 0.015 km²)
-- and, when a tile is built, the cells covering the tile and their outlines. A parent cell is a
-- bit operation on its child (tiles.h3_parent), so the rollups are aggregated level by level in
-- plain SQL like the quadtree cells. An incident therefore counts in the ancestors of its
-- resolution-10 cell, the usual way to aggregate H3: cells nest only approximately, so near an
-- edge that ancestor can be the neighbour of the coarse cell holding the point (by less than a
-- resolution-10 cell, about 70 m).
--
-- tiles.incident_delta_sql is redefined whole below: it is the one statement that folds incident
-- changes into every rollup (the quadtree cells and grid numbers are as in 0021), and applied
-- migrations are never edited.

CREATE EXTENSION IF NOT EXISTS plpython3u;

-- The finest resolution stored, the resolutions stored, and the finest one that keeps the
-- status and month of report (finer cells would hold nearly a row per incident).
CREATE FUNCTION tiles.h3_finest() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 10';
CREATE TABLE tiles.h3_levels (res smallint PRIMARY KEY CHECK (res BETWEEN 3 AND 10));
INSERT INTO tiles.h3_levels SELECT generate_series(3, 10);
CREATE FUNCTION tiles.h3_detail_finest() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 7';

-- The resolution the heatmap draws at zoom z: hexagons about 15-40 px across at 30° N
-- (layers/catalog.py DENSITY_RESOLUTIONS holds the same table for invalidation).
CREATE FUNCTION tiles.density_resolution(z integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ARRAY[3, 4, 4, 5, 6, 7, 7, 8, 9, 9, 10, 10, 10, 10])[least(greatest(z, 5), 18) - 4]
$$;

-- H3 cell indexes are 64-bit integers below 2^63, so they fit a bigint.
CREATE FUNCTION tiles.h3_cell(lon double precision, lat double precision, res integer) RETURNS bigint
LANGUAGE plpython3u IMMUTABLE STRICT PARALLEL SAFE AS $$
from h3.api.basic_int import latlng_to_cell
return latlng_to_cell(lat, lon, res)
$$;

-- The parent of a cell at a coarser resolution: the resolution field (bits 52-55) set to res and
-- the digits below it (3 bits each, from the lowest bit up) set to 7, as H3's cellToParent does.
CREATE FUNCTION tiles.h3_parent(cell bigint, res integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (cell & ~(15::bigint << 52) & ~((1::bigint << (3 * (15 - res))) - 1))
           | (res::bigint << 52) | ((1::bigint << (3 * (15 - res))) - 1)
$$;

-- The cells at resolution res overlapping tile (z, x, y), unordered; some may only touch its
-- bounding box (ST_AsMVTGeom drops those).
CREATE FUNCTION tiles.h3_cover(z integer, x integer, y integer, res integer) RETURNS bigint[]
LANGUAGE plpython3u IMMUTABLE STRICT PARALLEL SAFE AS $$
import math
from h3 import LatLngPoly
from h3.api.basic_int import polygon_to_cells_experimental

n = 2 ** z
west, east = x / n * 360.0 - 180.0, (x + 1) / n * 360.0 - 180.0
north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
tile = LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
return polygon_to_cells_experimental(tile, res, contain="bbox_overlap")
$$;

-- The outline of each cell in Web Mercator (EPSG:3857), as hex EWKB: projected here and handed
-- over as WKB, which costs a third of WKT parsing plus ST_Transform (4 ms of a 12 ms tile).
CREATE FUNCTION tiles.h3_outlines(cells bigint[]) RETURNS TABLE (cell bigint, geom geometry)
LANGUAGE plpython3u IMMUTABLE STRICT PARALLEL SAFE AS $$
import math
import struct
from h3.api.basic_int import cell_to_boundary

RADIUS = 6378137.0  # EPSG:3857 is the spherical Mercator of this radius
POLYGON_3857 = struct.pack("<BIII", 1, 0x20000003, 3857, 1)  # little-endian, SRID flag, one ring

def outline(cell):
    ring = cell_to_boundary(cell)
    ring += ring[:1]
    coordinates = []
    for lat, lng in ring:
        coordinates.append(math.radians(lng) * RADIUS)
        coordinates.append(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * RADIUS)
    wkb = POLYGON_3857 + struct.pack(f"<I{len(coordinates)}d", len(ring), *coordinates)
    return cell, wkb.hex()

return [outline(cell) for cell in cells]
$$;

-- Counts per H3 cell (resolutions 3-10) and category: what unfiltered and category-filtered
-- heatmap tiles read. The cell index carries its resolution.
CREATE TABLE tiles.density_cells (
    cell bigint NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (cell, category_code) INCLUDE (n)
);

-- Counts per H3 cell (resolutions 3-7), category, status and month of report: what status- or
-- period-filtered heatmap tiles read.
CREATE TABLE tiles.density_cells_detail (
    cell bigint NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (cell, category_code, status, month) INCLUDE (n)
);

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

-- Heatmap hexagons with the total and one count per category. Their feature id is the H3 index
-- (a hexagon crossing a tile edge has the same id in both tiles); `h3` is the same as text.
-- Filtered by status or period, hexagons come from the detail rollup, never finer than
-- resolution 7 (about 5 km²).
CREATE OR REPLACE FUNCTION tiles.incident_density(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT incident_density.status IS NULL AND period_start IS NULL AND period_end IS NULL AS plain
    ), cover AS (
        SELECT unnest(tiles.h3_cover(z, x, y, CASE WHEN shown.plain THEN tiles.density_resolution(z)
                                                   ELSE least(tiles.density_resolution(z), tiles.h3_detail_finest())
                                              END)) AS cell
          FROM shown
    ), counts AS (
        SELECT d.cell, d.category_code, d.n::bigint AS n
          FROM cover JOIN tiles.density_cells d ON d.cell = cover.cell, shown
         WHERE shown.plain
           AND (incident_density.category IS NULL OR d.category_code = ANY (incident_density.category))
        UNION ALL
        SELECT d.cell, d.category_code, sum(d.n)
          FROM cover JOIN tiles.density_cells_detail d ON d.cell = cover.cell, shown
         WHERE NOT shown.plain
           AND (incident_density.category IS NULL OR d.category_code = ANY (incident_density.category))
           AND (incident_density.status IS NULL OR d.status = ANY (incident_density.status))
           AND (period_start IS NULL OR d.month >= period_start)
           AND (period_end IS NULL OR d.month < period_end)
         GROUP BY 1, 2
    ), hexagons AS (
        SELECT cell, sum(n)::integer AS count,
               jsonb_object_agg(category_code, n) FILTER (WHERE n > 0) AS by_category
          FROM counts
         GROUP BY cell
        HAVING sum(n) > 0
    )
    SELECT coalesce(ST_AsMVT(t, 'incident_density', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(o.geom, ST_TileEnvelope(z, x, y), 4096, 0, true) AS geom,
                   h.cell AS id, to_hex(h.cell) AS h3, h.count, h.by_category
              FROM hexagons h
              JOIN tiles.h3_outlines(ARRAY(SELECT cell FROM hexagons)) o ON o.cell = h.cell) t
     WHERE t.geom IS NOT NULL
$fn$;

-- Fold every incident already stored into the new rollups (the others are rebuilt alike, so
-- all stay consistent): a database migrated with incidents in it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM incidents) THEN
        LOCK TABLE incidents IN SHARE MODE;
        PERFORM tiles.fold_pending(2147483647);
        TRUNCATE tiles.incident_cells, tiles.incident_cells_detail, tiles.grid_stats, tiles.grid_close_times,
                 tiles.grid_open_due, tiles.grid_open_due_hour, tiles.grid_open_due_month;
        EXECUTE tiles.incident_delta_sql('SELECT 1 AS sign, i.* FROM incidents i');
    END IF;
END $$;
