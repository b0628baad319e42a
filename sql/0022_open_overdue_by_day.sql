-- Open incidents past their due time, without reading every open incident per tile: open
-- incidents are counted per grid (and ancestor) and UTC day of due_at, so a grid's overdue count
-- is the days before today from this table plus today's exact part from incidents, which the
-- partial index on open due_at finds in a one-day range.
CREATE TABLE tiles.grid_open_due (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_day date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_day)
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
)
SELECT 1
$sql$, source)
$fn$;


INSERT INTO tiles.grid_open_due (grid_id, due_day, n)
SELECT a.grid_id, (i.due_at AT TIME ZONE 'UTC')::date, count(*)
  FROM incidents i
  JOIN grids g ON g.id = i.grid_id
 CROSS JOIN LATERAL unnest(string_to_array(ltree2text(g.path), '.')::integer[]) AS a(grid_id)
 WHERE i.status NOT IN ('closed', 'rejected') AND i.due_at IS NOT NULL
 GROUP BY 1, 2;

-- Replaces the version of 0021 that scanned every open overdue incident.
DROP FUNCTION tiles.open_overdue(ltree[]);
CREATE FUNCTION tiles.open_overdue(grid_ids integer[]) RETURNS TABLE (grid_id integer, n bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH shown AS (
        SELECT g.id, g.path FROM grids g WHERE g.id = ANY (grid_ids)
    ), before_today AS (
        SELECT d.grid_id, sum(d.n) AS n
          FROM tiles.grid_open_due d
         WHERE d.grid_id = ANY (grid_ids) AND d.due_day < (now() AT TIME ZONE 'UTC')::date
         GROUP BY d.grid_id
    ), today AS (
        SELECT s.id AS grid_id, count(*) AS n
          FROM incidents i
          JOIN grids g ON g.id = i.grid_id
          JOIN shown s ON g.path <@ s.path
         WHERE i.status NOT IN ('closed', 'rejected')
           AND i.due_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
           AND i.due_at < now()
         GROUP BY s.id
    )
    SELECT s.id, coalesce(b.n, 0) + coalesce(t.n, 0)
      FROM shown s
      LEFT JOIN before_today b ON b.grid_id = s.id
      LEFT JOIN today t ON t.grid_id = s.id
$fn$;

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
                   CASE WHEN role IN ('inspector', 'operator', 'leader', 'admin') THEN u.display_name END
                       AS member,
                   coalesce(st.open_count, 0) AS open,
                   coalesce(st.closed_due - st.closed_on_time, 0) + coalesce(o.n, 0)::integer AS overdue
              FROM shown s
              LEFT JOIN users u ON u.id = s.member_id
              LEFT JOIN tiles.grid_stats st ON st.grid_id = s.id
              LEFT JOIN overdue o ON o.grid_id = s.id) t
     WHERE t.geom IS NOT NULL
$fn$;
