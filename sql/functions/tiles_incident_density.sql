-- The incident_density (heatmap) layer: incidents counted per H3 hexagon
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).
-- Its rollups: tiles.density_cells (per cell and category), tiles.density_cells_detail (and
-- status and month), tiles.h3_cell_outlines; the fold in tiles_changes.sql keeps them.

-- The resolution the heatmap draws at zoom z: hexagons about 15-40 px across at 30° N
-- (layers/catalog.py DENSITY_RESOLUTIONS holds the same table for invalidation).
CREATE OR REPLACE FUNCTION tiles.density_resolution(z integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ARRAY[3, 4, 4, 5, 6, 7, 7, 8, 9, 9, 10, 10, 10, 10])[least(greatest(z, 5), 18) - 4]
$$;

-- Hexagons at the zoom's resolution (tiles.density_resolution) with their count and counts by
-- category. Status and period filters read the detail rollup, kept down to resolution
-- tiles.h3_detail_finest(): finer zooms then draw those coarser hexagons.
CREATE OR REPLACE FUNCTION tiles.incident_density(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT incident_density.status IS NULL AND period_start IS NULL AND period_end IS NULL AS plain,
               ST_TileEnvelope(z, x, y) AS envelope
    ), cover AS (
        -- Cells whose bounding box overlaps the tile's (ST_AsMVTGeom drops those only touching it).
        SELECT o.cell, o.geom
          FROM tiles.h3_cell_outlines o, shown
         WHERE o.res = CASE WHEN shown.plain THEN tiles.density_resolution(z)
                            ELSE least(tiles.density_resolution(z), tiles.h3_detail_finest())
                       END
           AND o.geom && shown.envelope
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
      FROM (SELECT ST_AsMVTGeom(c.geom, shown.envelope, 4096, 0, true) AS geom,
                   h.cell AS id, to_hex(h.cell) AS h3, h.count, h.by_category
              FROM hexagons h JOIN cover c USING (cell), shown) t
     WHERE t.geom IS NOT NULL
$fn$;
