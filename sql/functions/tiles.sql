-- What every tile file uses: the quadtree cell and the H3 cell of a point, a tile's envelope
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).
-- Its name sorts before every tiles_<area>.sql, whose SQL functions call these when they are
-- created (docs/architecture.md, "Functions in re-runnable files").
--
-- The layer functions, one per map layer (tiles_<layer>.sql), share one signature
-- (layers/catalog.py lists them):
--   tiles.<layer>(z, x, y, category text[], status text[], period_start date, period_end date, role text)
--   RETURNS bytea  -- one Mapbox Vector Tile layer; empty when the tile has no feature.
-- A NULL filter means "no filter"; period_end is exclusive. Layers ignore filters they do not
-- list in the catalog. Properties a role may not read are left out here, by `role`.

-- ## Quadtree cells and tiles

-- The cell hierarchy is the Web Mercator quadtree: the cell of a point at level L is the
-- slippy-map tile (cx, cy) at zoom L. These give a point's cell at level 20; its cell at level L
-- is that shifted right by 20 - L bits (the rollups keep the even levels 6..18).
CREATE OR REPLACE FUNCTION tiles.cell_x(lon double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(1048575, greatest(0, floor((lon + 180.0) / 360.0 * 1048576.0)))::integer
$$;

CREATE OR REPLACE FUNCTION tiles.cell_y(lat double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(1048575, greatest(0, floor(
        (1.0 - ln(tan(radians(lat)) + 1.0 / cos(radians(lat))) / pi()) / 2.0 * 1048576.0)))::integer
$$;

-- A tile's envelope in EPSG:4326, where incidents and grids are indexed. Web Mercator keeps
-- meridians and parallels straight, so the transformed rectangle is exact.
CREATE OR REPLACE FUNCTION tiles.envelope_4326(z integer, x integer, y integer) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_Transform(ST_TileEnvelope(z, x, y), 4326)
$$;

-- ## H3 cells (the heatmap)

-- PostGIS has no H3 and Debian ships no h3-pg extension, so the H3 functions run Uber's `h3`
-- package (the one gridwatch's Python code uses, pinned in pyproject.toml) inside the database
-- through PL/Python; scripts/system-packages.sh installs it for Debian's python3. The database
-- computes every cell, so no writer (API, demo, importer, psql) can leave the hexagons behind.
--
-- Only two things need the library: an incident's finest cell (resolution 10, about 0.015 km²)
-- and the outline of a cell the first time it holds an incident. A parent cell is a bit
-- operation on its child (tiles.h3_parent), so the rollups are aggregated level by level in
-- plain SQL like the quadtree cells. An incident therefore counts in the ancestors of its
-- resolution-10 cell, the usual way to aggregate H3: cells nest only approximately, so near an
-- edge that ancestor can be the neighbour of the coarse cell holding the point (by less than a
-- resolution-10 cell, about 70 m).

-- The finest resolution stored (tiles.h3_levels holds every resolution stored), and the finest
-- one that keeps the status and month of report (finer cells would hold nearly a row per incident).
CREATE OR REPLACE FUNCTION tiles.h3_finest() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 10';
CREATE OR REPLACE FUNCTION tiles.h3_detail_finest() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 7';

-- H3 cell indexes are 64-bit integers below 2^63, so they fit a bigint.
CREATE OR REPLACE FUNCTION tiles.h3_cell(lon double precision, lat double precision, res integer) RETURNS bigint
LANGUAGE plpython3u IMMUTABLE STRICT PARALLEL SAFE AS $$
from h3.api.basic_int import latlng_to_cell
return latlng_to_cell(lat, lon, res)
$$;

-- The parent of a cell at a coarser resolution: the resolution field (bits 52-55) set to res and
-- the digits below it (3 bits each, from the lowest bit up) set to 7, as H3's cellToParent does.
CREATE OR REPLACE FUNCTION tiles.h3_parent(cell bigint, res integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (cell & ~(15::bigint << 52) & ~((1::bigint << (3 * (15 - res))) - 1))
           | (res::bigint << 52) | ((1::bigint << (3 * (15 - res))) - 1)
$$;

-- The outline of each cell in Web Mercator (EPSG:3857), as hex EWKB: projected here and handed
-- over as WKB, which costs a third of WKT parsing plus ST_Transform (4 ms of a 12 ms tile).
CREATE OR REPLACE FUNCTION tiles.h3_outlines(cells bigint[]) RETURNS TABLE (cell bigint, geom geometry)
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

-- An H3 cell's resolution: bits 52-55 of its index, as H3's getResolution reads them.
CREATE OR REPLACE FUNCTION tiles.h3_resolution(cell bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ((cell >> 52) & 15)::smallint
$$;
