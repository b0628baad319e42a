-- The coverage layer at every zoom (docs/tiles.md): from zoom 10 each grid with the days since its
-- last patrol, as before; at zoom 5-9, where a grid is a few pixels, each township with its coverage
-- gaps counted: grids, grids without a member, grids not patrolled for 7 days (or never), and the
-- longest time since a patrol among its grids.

CREATE FUNCTION tiles.stale_patrol_days() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 7';

CREATE OR REPLACE FUNCTION tiles.coverage(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT g.id, g.code, g.name_zh, g.path, g.geom
          FROM grids g
         WHERE g.level = CASE WHEN z < 10 THEN 'township' ELSE 'grid' END
           AND g.geom && tiles.envelope_4326(z, x, y)
    ), shown_grids AS (
        -- The grids of each shown area: itself from zoom 10, a township's grids below.
        SELECT s.id AS shown_id, s.id AS grid_id FROM shown s WHERE z >= 10
        UNION ALL
        SELECT s.id, g.id FROM shown s JOIN grids g ON g.path <@ s.path AND g.level = 'grid' WHERE z < 10
    ), grid_gaps AS (
        SELECT sg.shown_id, g.member_id IS NOT NULL AS has_member, last.ended_at
          FROM shown_grids sg
          JOIN grids g ON g.id = sg.grid_id
          LEFT JOIN LATERAL (SELECT p.ended_at FROM patrols p WHERE p.grid_id = g.id
                              ORDER BY p.started_at DESC LIMIT 1) last ON true
    ), areas AS (
        SELECT shown_id,
               count(*) AS grids,
               count(*) FILTER (WHERE NOT has_member) AS without_member,
               count(*) FILTER (WHERE ended_at IS NULL
                                   OR ended_at < now() - tiles.stale_patrol_days() * interval '1 day')
                   AS stale,
               -- The longest gap, unknown when a grid was never patrolled.
               CASE WHEN count(ended_at) = count(*)
                    THEN floor(extract(epoch FROM now() - min(ended_at)) / 86400)::integer END
                   AS days_since_patrol
          FROM grid_gaps
         GROUP BY shown_id
    )
    SELECT coalesce(ST_AsMVT(t, 'coverage', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   s.id, s.code, s.name_zh AS name,
                   CASE WHEN z >= 10 THEN a.without_member = 0 END AS has_member,
                   a.days_since_patrol,
                   CASE WHEN z < 10 THEN a.grids END AS grids,
                   CASE WHEN z < 10 THEN a.without_member END AS without_member,
                   CASE WHEN z < 10 THEN a.stale END AS not_patrolled_7d
              FROM shown s
              LEFT JOIN areas a ON a.shown_id = s.id) t
     WHERE t.geom IS NOT NULL
$fn$;
