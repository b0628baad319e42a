-- Coverage per grid of the `grid` level (where members and patrols are assigned):
-- its member, its last patrol, patrols and reports within the window, and its township.
-- Parameters: since, until (the window), simplify (degrees; 0 keeps the outline as it is, NULL
-- leaves it out).
WITH unit AS (
    SELECT g.id, g.code, g.name_zh, g.name_en, g.households, g.member_id, g.path, g.geom,
           ltree2text(subpath(g.path, 1, 1))::integer AS township_id,
           ltree2text(subpath(g.path, 2, 1))::integer AS village_id
      FROM grids g
     WHERE g.level = 'grid'
),
-- Incidents are filed in the finest grid: each counts for its `grid`-level ancestor.
owner AS (
    SELECT d.id AS grid_id, ltree2text(subpath(d.path, 3, 1))::integer AS unit_id
      FROM grids d
     WHERE nlevel(d.path) >= 4
),
reports AS (
    SELECT o.unit_id, count(*) AS n
      FROM incidents i JOIN owner o ON o.grid_id = i.grid_id
     WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
     GROUP BY o.unit_id
),
walks AS (
    SELECT p.grid_id, count(*) AS n
      FROM patrols p
     WHERE p.ended_at >= %(since)s AND p.ended_at < %(until)s
     GROUP BY p.grid_id
)
SELECT u.id, u.code, u.name_zh, u.name_en, u.township_id, u.village_id,
       coalesce(u.households, 0) AS households,
       u.member_id IS NOT NULL AS has_member, m.display_name AS member,
       last.ended_at AS last_patrol_at,
       coalesce(w.n, 0) AS patrols, coalesce(r.n, 0) AS reports,
       CASE WHEN %(simplify)s::float8 IS NOT NULL
            THEN ST_AsGeoJSON(CASE WHEN %(simplify)s > 0 THEN ST_SimplifyPreserveTopology(u.geom, %(simplify)s)
                                   ELSE u.geom END, 6)::json END AS geometry
  FROM unit u
  LEFT JOIN users m ON m.id = u.member_id
  LEFT JOIN walks w ON w.grid_id = u.id
  LEFT JOIN reports r ON r.unit_id = u.id
  -- The newest patrol up to the window's end, from the (grid_id, started_at) index.
  LEFT JOIN LATERAL (SELECT p.ended_at FROM patrols p
                      WHERE p.grid_id = u.id AND p.started_at < %(until)s
                      ORDER BY p.started_at DESC LIMIT 1) last ON true
 ORDER BY u.code
