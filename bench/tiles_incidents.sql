-- `bench.incidents` more incidents in the county of bench/tiles_county.sql: 70 % clustered
-- around the township seats (sigma about 2 km), 30 % spread, two years of reports, most of them
-- closed. Open: the last three days' reports, and the 3 % of slow cases among the last 30 days'
-- (older slow cases closed 5 to 25 days late): a backlog of a few days' intake, as a county holds
-- (until 2026-12-03 every slow case of the two years stayed open: 34,000 cases, 94 % overdue,
-- and rejected cases had no rejection time, which the workflow always sets).
-- Deterministic for one `bench.seed` (both set with set_config by the caller). Run it several
-- times with other seeds to grow the data in steps.
SELECT setseed(current_setting('bench.seed')::double precision);

CREATE TEMP TABLE bench_grid_cells AS
SELECT g.id, floor((ST_XMin(g.geom) - 103.0) / 0.0125 + 0.5)::integer AS col,
       floor((ST_YMin(g.geom) - 29.4) / (0.6 / 45) + 0.5)::integer AS row
  FROM grids g WHERE g.level = 'grid' AND g.code LIKE '900000%';

CREATE TEMP TABLE bench_points AS
SELECT i,
       least(103.5999, greatest(103.0, CASE WHEN clustered THEN seat_lon + 0.02 * r * cos(a) ELSE 103.0 + 0.6 * u END)) AS lon,
       least(29.9999, greatest(29.4, CASE WHEN clustered THEN seat_lat + 0.02 * r * sin(a) ELSE 29.4 + 0.6 * v END)) AS lat,
       now() - random() * interval '730 days' AS reported_at,
       random() AS fate,
       (ARRAY['safety_hazard', 'straw_burning', 'sanitation', 'dispute', 'public_facility',
              'epidemic', 'resident_service', 'flood_geohazard'])[1 + floor(random() * 8)::integer] AS category
  FROM (SELECT i, random() < 0.7 AS clustered,
               103.1 + 0.2 * floor(random() * 3) AS seat_lon, 29.46 + 0.12 * floor(random() * 5) AS seat_lat,
               sqrt(-2 * ln(1 - random())) AS r, 2 * pi() * random() AS a, random() AS u, random() AS v
          FROM generate_series(1, current_setting('bench.incidents')::integer) AS i) p;

INSERT INTO incidents (geom, grid_id, category_code, channel, status, priority, reported_at,
                       accepted_at, dispatched_at, due_at, resolved_at, verified_at, closed_at,
                       rejected_at)
SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), gc.id, p.category, 'app',
       CASE WHEN p.open THEN 'dispatched' WHEN p.fate >= 0.03 AND p.fate < 0.08 THEN 'rejected' ELSE 'closed' END,
       'normal', p.reported_at, p.reported_at + interval '1 hour', p.reported_at + interval '2 hours',
       p.reported_at + interval '2 days',
       CASE WHEN p.open OR (p.fate >= 0.03 AND p.fate < 0.08) THEN NULL
            WHEN p.fate < 0.03 THEN p.reported_at + interval '3 hours' + interval '5 days' + p.fate / 0.03 * interval '20 days'
            ELSE p.reported_at + interval '3 hours' + p.fate * interval '3 days' END,
       CASE WHEN p.open OR (p.fate >= 0.03 AND p.fate < 0.08) THEN NULL
            WHEN p.fate < 0.03 THEN p.reported_at + interval '4 hours' + interval '5 days' + p.fate / 0.03 * interval '20 days'
            ELSE p.reported_at + interval '4 hours' + p.fate * interval '3 days' END,
       CASE WHEN p.open OR (p.fate >= 0.03 AND p.fate < 0.08) THEN NULL
            WHEN p.fate < 0.03 THEN p.reported_at + interval '5 hours' + interval '5 days' + p.fate / 0.03 * interval '20 days'
            ELSE p.reported_at + interval '5 hours' + p.fate * interval '3 days' END,
       CASE WHEN NOT p.open AND p.fate >= 0.03 AND p.fate < 0.08 THEN p.reported_at + interval '1 hour' END
  FROM (SELECT *, reported_at > now() - interval '3 days'
                  OR (fate < 0.03 AND reported_at > now() - interval '30 days') AS open
          FROM bench_points) p
  JOIN bench_grid_cells gc
    ON gc.col = least(47, floor((p.lon - 103.0) / 0.0125)::integer)
   AND gc.row = least(44, floor((p.lat - 29.4) / (0.6 / 45))::integer);

DROP TABLE bench_grid_cells, bench_points;
