-- A synthetic county for bench/tiles.py, built set-based (the demo generator may not be there):
-- 15 townships, 180 villages, 2,160 grids of about 1.2 x 1.5 km over 0.6 x 0.6 degrees around
-- Hongya. bench/tiles_incidents.sql adds the incidents.
SELECT setseed(0.42);

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

DROP TABLE bench_cells;

-- Patrols, for the coverage layer: each grid's member checks in at its centre on about nine days
-- in ten of the last two years (about 1.4 million patrols); a grid in twenty has not been
-- patrolled for the last month.
INSERT INTO patrols (user_id, grid_id, started_at, ended_at, geom)
SELECT g.member_id, g.id, d.day + interval '9 hours', d.day + interval '10 hours', ST_PointOnSurface(g.geom)
  FROM grids g
  CROSS JOIN LATERAL (SELECT date_trunc('day', now()) - n * interval '1 day' AS day
                        FROM generate_series(1, 730) AS n
                       WHERE random() < 0.9 AND (g.id % 20 <> 0 OR n > 30)) d
 WHERE g.level = 'grid' AND g.member_id IS NOT NULL;
