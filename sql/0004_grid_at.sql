-- grid_at(point): the finest grid that covers a point, or NULL outside every grid.
-- A point on an edge shared by grids of the same level (or a vertex shared by several) goes
-- to the grid with the smallest code: a stable, documented choice (docs/architecture.md).
CREATE FUNCTION grid_at(point geometry) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.id
      FROM grids g
      JOIN grid_levels l USING (level)
     WHERE g.geom && point AND ST_Covers(g.geom, point)
     ORDER BY l.depth DESC, g.code
     LIMIT 1
$$;
