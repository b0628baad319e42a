-- The coverage layer at every zoom (docs/tiles.md): from zoom 10 each grid with the days since its
-- last patrol, as before; at zoom 5-9, where a grid is a few pixels, each township with its coverage
-- gaps counted: grids, grids without a member, grids not patrolled for 7 days (or never), and the
-- longest time since a patrol among its grids.

CREATE FUNCTION tiles.stale_patrol_days() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 7';

CREATE OR REPLACE FUNCTION tiles.coverage(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH last_patrols AS (
        -- From zoom 10 each grid drawn; below, every grid of each township drawn.
        SELECT g.id AS shown_id, g.member_id, last.ended_at
          FROM grids g
          LEFT JOIN LATERAL (SELECT p.ended_at FROM patrols p WHERE p.grid_id = g.id
                              ORDER BY p.started_at DESC LIMIT 1) last ON true
         WHERE z >= 10 AND g.level = 'grid' AND g.geom && tiles.envelope_4326(z, x, y)
        UNION ALL
        SELECT t.id, g.member_id, last.ended_at
          FROM grids t
          JOIN grids g ON g.path <@ t.path AND g.level = 'grid'
          LEFT JOIN LATERAL (SELECT p.ended_at FROM patrols p WHERE p.grid_id = g.id
                              ORDER BY p.started_at DESC LIMIT 1) last ON true
         WHERE z < 10 AND t.level = 'township' AND t.geom && tiles.envelope_4326(z, x, y)
    ), shown AS (
        SELECT shown_id,
               count(*) AS grids,
               count(*) FILTER (WHERE member_id IS NULL) AS without_member,
               count(*) FILTER (WHERE ended_at IS NULL
                                   OR ended_at < now() - tiles.stale_patrol_days() * interval '1 day')
                   AS stale,
               -- The longest gap, unknown when a grid was never patrolled.
               CASE WHEN count(ended_at) = count(*)
                    THEN floor(extract(epoch FROM now() - min(ended_at)) / 86400)::integer END
                   AS days_since_patrol
          FROM last_patrols
         GROUP BY shown_id
    )
    SELECT coalesce(ST_AsMVT(t, 'coverage', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   g.id, g.code, g.name_zh AS name,
                   CASE WHEN z >= 10 THEN s.without_member = 0 END AS has_member,
                   s.days_since_patrol,
                   CASE WHEN z < 10 THEN s.grids END AS grids,
                   CASE WHEN z < 10 THEN s.without_member END AS without_member,
                   CASE WHEN z < 10 THEN s.stale END AS not_patrolled_7d
              FROM shown s
              JOIN grids g ON g.id = s.shown_id) t
     WHERE t.geom IS NOT NULL
$fn$;
