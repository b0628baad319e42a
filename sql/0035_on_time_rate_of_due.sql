-- The on-time rate of the `response` layer as the bulletin defines it (docs/analytics.md):
-- closed on time ÷ cases due, not ÷ closed cases. A grid that closes nothing no longer looks
-- perfect: its open cases past their due time count in the denominator.
-- From the rollups: due ≈ closed cases with a due time + open cases past it (a case closed
-- before a due time that is still ahead counts as due a little early).
CREATE OR REPLACE FUNCTION tiles.response(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT g.* FROM grids g
         WHERE g.level = tiles.grid_level(z) AND g.geom && tiles.envelope_4326(z, x, y)
    ), overdue AS (
        SELECT * FROM tiles.open_overdue(ARRAY(SELECT id FROM shown))
    )
    SELECT coalesce(ST_AsMVT(t, 'response', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   s.id, s.code, s.name_zh AS name, s.level,
                   coalesce(st.closed_count, 0) AS closed,
                   tiles.median_close_hours(s.id) AS median_close_h,
                   round(st.closed_on_time::numeric
                         / nullif(st.closed_due + coalesce(o.n, 0), 0), 3)::real AS on_time_rate
              FROM shown s
              LEFT JOIN tiles.grid_stats st ON st.grid_id = s.id
              LEFT JOIN overdue o ON o.grid_id = s.id) t
     WHERE t.geom IS NOT NULL
$fn$;
