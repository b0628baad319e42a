-- A synthetic county for bench/tiles.py, built set-based (the demo generator may not be there):
-- 15 townships, 180 villages, 2,160 grids of about 1.2 x 1.5 km over 0.6 x 0.6 degrees around
-- Hongya, and `bench.incidents` incidents: 70 % clustered around the township seats, 30 % spread,
-- two years of reports, most of them closed. Deterministic for one `bench.seed`
-- (both set with set_config by the caller).
SELECT setseed(current_setting('bench.seed')::double precision);

INSERT INTO users (username, display_name, role)
SELECT 'bench_member_' || i, '网格员' || i, 'inspector' FROM generate_series(1, 2000) AS i;

INSERT INTO grids (code, level, parent_id, name_zh, geom)
VALUES ('900000', 'county', NULL, '基准县', ST_Multi(ST_MakeEnvelope(103.0, 29.4, 103.6, 30.0, 4326)));

-- Townships are 16 x 9 blocks of grids (3 x 5 of them), villages 4 x 3 blocks (4 x 3 per township).
CREATE TEMP TABLE bench_cells AS
SELECT col, row, col / 16 AS tcol, row / 9 AS trow, (col % 16) / 4 AS vcol, (row % 9) / 3 AS vrow
  FROM generate_series(0, 47) AS col, generate_series(0, 44) AS row;

INSERT INTO grids (code, level, parent_id, name_zh, geom)
SELECT '900000' || lpad((trow * 3 + tcol + 1)::text, 3, '0'), 'township',
       (SELECT id FROM grids WHERE code = '900000'), '基准镇' || (trow * 3 + tcol + 1),
       ST_Multi(ST_MakeEnvelope(103.0 + tcol * 0.2, 29.4 + trow * 0.12,
                                103.0 + (tcol + 1) * 0.2, 29.4 + (trow + 1) * 0.12, 4326))
  FROM (SELECT DISTINCT tcol, trow FROM bench_cells) t;

INSERT INTO grids (code, level, parent_id, name_zh, geom)
SELECT tw.code || lpad((vrow * 4 + vcol + 1)::text, 3, '0'), 'village', tw.id,
       tw.name_zh || '村' || (vrow * 4 + vcol + 1),
       ST_Multi(ST_MakeEnvelope(103.0 + tcol * 0.2 + vcol * 0.05, 29.4 + trow * 0.12 + vrow * 0.04,
                                103.0 + tcol * 0.2 + (vcol + 1) * 0.05,
                                29.4 + trow * 0.12 + (vrow + 1) * 0.04, 4326))
  FROM (SELECT DISTINCT tcol, trow, vcol, vrow FROM bench_cells) v
  JOIN grids tw ON tw.code = '900000' || lpad((trow * 3 + tcol + 1)::text, 3, '0');

INSERT INTO grids (code, level, parent_id, name_zh, geom, member_id)
SELECT vi.code || lpad(((c.row % 3) * 4 + (c.col % 4) + 1)::text, 3, '0'), 'grid', vi.id,
       vi.name_zh || '网格' || ((c.row % 3) * 4 + (c.col % 4) + 1),
       ST_Multi(ST_MakeEnvelope(103.0 + c.col * 0.0125, 29.4 + c.row * (0.6 / 45),
                                103.0 + (c.col + 1) * 0.0125, 29.4 + (c.row + 1) * (0.6 / 45), 4326)),
       CASE WHEN random() < 0.97 THEN (SELECT min(id) FROM users) + (c.col * 45 + c.row) % 2000 END
  FROM bench_cells c
  JOIN grids vi ON vi.code = '900000' || lpad((c.trow * 3 + c.tcol + 1)::text, 3, '0')
                              || lpad((c.vrow * 4 + c.vcol + 1)::text, 3, '0');

CREATE TEMP TABLE bench_grid_cells AS
SELECT g.id, floor((ST_XMin(g.geom) - 103.0) / 0.0125 + 0.5)::integer AS col,
       floor((ST_YMin(g.geom) - 29.4) / (0.6 / 45) + 0.5)::integer AS row
  FROM grids g WHERE g.level = 'grid' AND g.code LIKE '900000%';

-- Points: 70 % normal around a township seat (sigma about 2 km), 30 % uniform.
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
                       accepted_at, dispatched_at, due_at, resolved_at, verified_at, closed_at)
SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), gc.id, p.category, 'app',
       CASE WHEN p.reported_at > now() - interval '3 days' OR p.fate < 0.03 THEN 'dispatched'
            WHEN p.fate < 0.08 THEN 'rejected' ELSE 'closed' END,
       'normal', p.reported_at, p.reported_at + interval '1 hour', p.reported_at + interval '2 hours',
       p.reported_at + interval '2 days',
       CASE WHEN p.fate >= 0.08 AND p.reported_at <= now() - interval '3 days'
            THEN p.reported_at + interval '3 hours' + p.fate * interval '3 days' END,
       CASE WHEN p.fate >= 0.08 AND p.reported_at <= now() - interval '3 days'
            THEN p.reported_at + interval '4 hours' + p.fate * interval '3 days' END,
       CASE WHEN p.fate >= 0.08 AND p.reported_at <= now() - interval '3 days'
            THEN p.reported_at + interval '5 hours' + p.fate * interval '3 days' END
  FROM bench_points p
  JOIN bench_grid_cells gc
    ON gc.col = least(47, floor((p.lon - 103.0) / 0.0125)::integer)
   AND gc.row = least(44, floor((p.lat - 29.4) / (0.6 / 45))::integer);

DROP TABLE bench_cells, bench_grid_cells, bench_points;
