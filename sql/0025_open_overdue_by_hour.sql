-- Open overdue incidents, exact and cheap at any data size. 0022 counted today's part from the
-- incidents table, which grows with the data (10,000,000 incidents: thousands due each day), and
-- summed a row per day of history. Now, per grid (and ancestor), UTC buckets of due_at: months
-- before this one, days of this month before today (tiles.grid_open_due), hours of today before
-- this one, and only the current hour from incidents: at most about 80 rows per grid.
CREATE TABLE tiles.grid_open_due_month (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_month)
);

CREATE TABLE tiles.grid_open_due_hour (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_hour timestamptz NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_hour)
);

CREATE OR REPLACE FUNCTION tiles.incident_delta_sql(source text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
SELECT format($sql$
WITH delta AS (
    SELECT s.sign, s.grid_id, s.category_code COLLATE "C" AS category_code, s.status COLLATE "C" AS status,
           s.status NOT IN ('closed', 'rejected') AS open,
           date_trunc('month', s.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
           tiles.cell_x(ST_X(s.geom)) AS cx20, tiles.cell_y(ST_Y(s.geom)) AS cy20,
           s.closed_at, s.due_at, s.reported_at
      FROM (%s) AS s
), per_level AS (
    SELECT d.*, l.level, d.cx20 >> (20 - l.level) AS cx, d.cy20 >> (20 - l.level) AS cy
      FROM delta d CROSS JOIN tiles.pyramid_levels l
), cells AS (
    INSERT INTO tiles.incident_cells AS c (level, bx, by, cx, cy, category_code, n, n_open)
    SELECT level, cx >> 6, cy >> 6, cx, cy, category_code,
           sum(sign), coalesce(sum(sign) FILTER (WHERE open), 0)
      FROM per_level
     GROUP BY level, cx, cy, category_code
    HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE open), 0) <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy, category_code
    ON CONFLICT (level, bx, by, cx, cy, category_code)
    DO UPDATE SET n = c.n + excluded.n, n_open = c.n_open + excluded.n_open
), detail AS (
    INSERT INTO tiles.incident_cells_detail AS c (level, bx, by, cx, cy, category_code, status, month, n)
    SELECT level, cx >> 6, cy >> 6, cx, cy, category_code, status, month, sum(sign)
      FROM per_level
     WHERE level <= 14
     GROUP BY level, cx, cy, category_code, status, month
    HAVING sum(sign) <> 0
     ORDER BY level, cx >> 6, cy >> 6, cx, cy, category_code, status, month
    ON CONFLICT (level, bx, by, cx, cy, category_code, status, month)
    DO UPDATE SET n = c.n + excluded.n
), per_grid AS (
    SELECT d.*, a.grid_id AS owner_id
      FROM delta d
      JOIN grids g ON g.id = d.grid_id
      CROSS JOIN LATERAL unnest(string_to_array(ltree2text(g.path), '.')::integer[]) AS a(grid_id)
), stats AS (
    INSERT INTO tiles.grid_stats AS t
           (grid_id, incidents, open_count, closed_count, closed_due, closed_on_time)
    SELECT owner_id, sum(sign),
           coalesce(sum(sign) FILTER (WHERE open), 0),
           coalesce(sum(sign) FILTER (WHERE status = 'closed'), 0),
           coalesce(sum(sign) FILTER (WHERE status = 'closed' AND due_at IS NOT NULL), 0),
           coalesce(sum(sign) FILTER (WHERE status = 'closed' AND closed_at <= due_at), 0)
      FROM per_grid
     GROUP BY owner_id
     ORDER BY owner_id
    ON CONFLICT (grid_id) DO UPDATE SET
        incidents = t.incidents + excluded.incidents,
        open_count = t.open_count + excluded.open_count,
        closed_count = t.closed_count + excluded.closed_count,
        closed_due = t.closed_due + excluded.closed_due,
        closed_on_time = t.closed_on_time + excluded.closed_on_time
), close_times AS (
    INSERT INTO tiles.grid_close_times AS t (grid_id, bucket, n)
    SELECT owner_id,
           floor(4 * ln(greatest(1.0, extract(epoch FROM closed_at - reported_at)::float8 / 60.0))
                 / ln(2.0))::smallint,
           sum(sign)
      FROM per_grid
     WHERE status = 'closed' AND closed_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, bucket) DO UPDATE SET n = t.n + excluded.n
), open_due AS (
    INSERT INTO tiles.grid_open_due AS t (grid_id, due_day, n)
    SELECT owner_id, (due_at AT TIME ZONE 'UTC')::date, sum(sign)
      FROM per_grid
     WHERE open AND due_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_day) DO UPDATE SET n = t.n + excluded.n
), open_due_hours AS (
    INSERT INTO tiles.grid_open_due_hour AS t (grid_id, due_hour, n)
    SELECT owner_id, date_trunc('hour', due_at), sum(sign)
      FROM per_grid
     WHERE open AND due_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_hour) DO UPDATE SET n = t.n + excluded.n
), open_due_months AS (
    INSERT INTO tiles.grid_open_due_month AS t (grid_id, due_month, n)
    SELECT owner_id, date_trunc('month', due_at AT TIME ZONE 'UTC')::date, sum(sign)
      FROM per_grid
     WHERE open AND due_at IS NOT NULL
     GROUP BY 1, 2
    HAVING sum(sign) <> 0
     ORDER BY 1, 2
    ON CONFLICT (grid_id, due_month) DO UPDATE SET n = t.n + excluded.n
)
SELECT 1
$sql$, source)
$fn$;

INSERT INTO tiles.grid_open_due_hour (grid_id, due_hour, n)
SELECT a.grid_id, date_trunc('hour', i.due_at), count(*)
  FROM incidents i
  JOIN grids g ON g.id = i.grid_id
 CROSS JOIN LATERAL unnest(string_to_array(ltree2text(g.path), '.')::integer[]) AS a(grid_id)
 WHERE i.status NOT IN ('closed', 'rejected') AND i.due_at IS NOT NULL
 GROUP BY 1, 2;

INSERT INTO tiles.grid_open_due_month (grid_id, due_month, n)
SELECT grid_id, date_trunc('month', due_day)::date, sum(n)
  FROM tiles.grid_open_due
 GROUP BY 1, 2;

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
