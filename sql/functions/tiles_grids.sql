-- The grid layers: `grids` (open and overdue incidents, the grid member) and `response` (closed
-- incidents, median time to close, on-time rate), one polygon per grid of the level a zoom shows,
-- with numbers from the grid rollups that tiles_changes.sql keeps
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- The grid level a grid layer shows at a zoom.
CREATE OR REPLACE FUNCTION tiles.grid_level(z integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN z < 10 THEN 'township' WHEN z < 13 THEN 'village' ELSE 'grid' END
$$;

-- Open overdue incidents per shown grid (descendants included), from the due_at rollups
-- (tiles.grid_open_due, _month and _hour).
CREATE OR REPLACE FUNCTION tiles.open_overdue(grid_ids integer[]) RETURNS TABLE (grid_id integer, n bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH bounds AS (
        SELECT (now() AT TIME ZONE 'UTC')::date AS today,
               date_trunc('month', now() AT TIME ZONE 'UTC')::date AS month_start,
               date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS today_start,
               date_trunc('hour', now()) AS hour_start
    ), shown AS (
        SELECT g.id, g.path FROM grids g WHERE g.id = ANY (grid_ids)
    ), counted AS (
        SELECT m.grid_id, m.n
          FROM tiles.grid_open_due_month m, bounds b
         WHERE m.grid_id = ANY (grid_ids) AND m.due_month < b.month_start
        UNION ALL
        SELECT d.grid_id, d.n
          FROM tiles.grid_open_due d, bounds b
         WHERE d.grid_id = ANY (grid_ids) AND d.due_day >= b.month_start AND d.due_day < b.today
        UNION ALL
        SELECT h.grid_id, h.n
          FROM tiles.grid_open_due_hour h, bounds b
         WHERE h.grid_id = ANY (grid_ids) AND h.due_hour >= b.today_start AND h.due_hour < b.hour_start
        UNION ALL
        SELECT s.id, c.n
          FROM (SELECT i.grid_id, count(*) AS n
                  FROM incidents i, bounds b
                 WHERE i.status NOT IN ('closed', 'rejected')
                   AND i.due_at >= greatest(b.hour_start, b.today_start) AND i.due_at < now()
                 GROUP BY i.grid_id) c
          JOIN grids g ON g.id = c.grid_id
          JOIN shown s ON g.path <@ s.path
    )
    SELECT s.id, coalesce(sum(c.n), 0)::bigint
      FROM shown s
      LEFT JOIN counted c ON c.grid_id = s.id
     GROUP BY s.id
$fn$;

-- In SQL functions a column name wins over a parameter of the same name: the `role` column of the
-- joined users row would shadow the caller's role and leak member names to every role, so the
-- parameter is referenced by position ($8 = role).
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

-- Median time to close read from the histogram: the geometric middle of the median's bucket.
CREATE OR REPLACE FUNCTION tiles.median_close_hours(grid integer) RETURNS real
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT round((power(2, (h.bucket + 0.5) / 4.0) / 60.0)::numeric, 1)::real
      FROM (SELECT t.bucket, sum(t.n) OVER (ORDER BY t.bucket) AS running, sum(t.n) OVER () AS total
              FROM tiles.grid_close_times t WHERE t.grid_id = grid AND t.n > 0) h
     WHERE h.running * 2 >= h.total
     ORDER BY h.bucket
     LIMIT 1
$fn$;

-- The response layer. Its on-time rate is the bulletin's (docs/analytics.md):
-- closed on time ÷ cases due, not ÷ closed cases. A grid that closes nothing does not look
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
