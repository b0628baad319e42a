-- In SQL functions a column name wins over a parameter of the same name: in tiles.grids the
-- `role` of the joined users row shadowed the caller's role, so member names leaked to every
-- role. The parameter is referenced by position ($8 = role) from now on.
CREATE OR REPLACE FUNCTION tiles.grids(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT g.* FROM grids g
         WHERE g.level = tiles.grid_level(z) AND g.geom && tiles.envelope_4326(z, x, y)
    ), overdue AS (
        SELECT * FROM tiles.open_overdue(ARRAY(SELECT id FROM shown))
    )
    SELECT coalesce(ST_AsMVT(t, 'grids', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   s.id, s.code, s.name_zh AS name, s.level,
                   s.member_id IS NOT NULL AS has_member,
                   CASE WHEN $8 IN ('inspector', 'operator', 'leader', 'admin') THEN u.display_name END
                       AS member,
                   coalesce(st.open_count, 0) AS open,
                   coalesce(st.closed_due - st.closed_on_time, 0) + coalesce(o.n, 0)::integer AS overdue
              FROM shown s
              LEFT JOIN users u ON u.id = s.member_id
              LEFT JOIN tiles.grid_stats st ON st.grid_id = s.id
              LEFT JOIN overdue o ON o.grid_id = s.id) t
     WHERE t.geom IS NOT NULL
$fn$;
