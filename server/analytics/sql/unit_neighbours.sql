-- Queen contiguity of the grids of one level: each pair of units whose stored polygons share at
-- least a point (an edge or a corner), once per pair (a.id < b.id).
-- Parameters: level.
SELECT a.id, b.id
  FROM grids a
  JOIN grids b ON b.level = a.level AND b.id > a.id AND b.geom && a.geom AND ST_Intersects(a.geom, b.geom)
 WHERE a.level = %(level)s
