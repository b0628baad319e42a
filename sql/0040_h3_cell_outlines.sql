-- Each H3 cell's outline in EPSG:3857, stored once when the cell first holds an incident (the
-- fold in sql/functions/tiles_incidents.sql adds new cells). A heatmap tile computed the cells
-- covering it and their outlines in PL/Python on every build, 5 of a zoom-14 tile's 7 ms; it
-- now finds its hexagons through an index (sql/functions/tiles_incident_density.sql).
-- One partition per resolution, each with its own spatial index: a tile reads one resolution,
-- and one index over all eight would return the finer cells of the same area too (20,000 rows
-- read for 75 drawn at zoom 11).
CREATE TABLE tiles.h3_cell_outlines (
    res smallint NOT NULL,
    cell bigint NOT NULL,
    geom geometry(Polygon, 3857) NOT NULL,
    PRIMARY KEY (res, cell)
) PARTITION BY LIST (res);

DO $$
DECLARE
    level smallint;
BEGIN
    FOR level IN SELECT res FROM tiles.h3_levels ORDER BY res LOOP
        EXECUTE format('CREATE TABLE tiles.h3_cell_outlines_%1$s PARTITION OF tiles.h3_cell_outlines'
                       ' FOR VALUES IN (%1$s)', level);
    END LOOP;
END $$;

CREATE INDEX h3_cell_outlines_geom ON tiles.h3_cell_outlines USING gist (geom);

-- The cells already counted. The resolution is bits 52-55 of the index (H3's own layout).
INSERT INTO tiles.h3_cell_outlines (res, cell, geom)
SELECT ((o.cell >> 52) & 15)::smallint, o.cell, o.geom
  FROM tiles.h3_outlines(ARRAY(SELECT DISTINCT cell FROM tiles.density_cells)) AS o;
ANALYZE tiles.h3_cell_outlines;

-- The tile-time cover it replaces (tile invalidation finds a hexagon's tiles in Python).
DROP FUNCTION tiles.h3_cover(integer, integer, integer, integer);
