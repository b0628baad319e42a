-- The latest patrol of each finest grid: what the coverage layer draws (days since the last
-- patrol). The layer looked it up per grid shown, 2,184 index lookups for a zoom-5 tile (20 ms of
-- a tile's 20 ms); the triggers that keep it are in sql/functions/tiles_coverage.sql.
CREATE TABLE tiles.grid_last_patrol (
    grid_id integer PRIMARY KEY REFERENCES grids (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL
);

LOCK TABLE patrols IN SHARE MODE;
INSERT INTO tiles.grid_last_patrol (grid_id, started_at, ended_at)
SELECT DISTINCT ON (grid_id) grid_id, started_at, ended_at
  FROM patrols
 ORDER BY grid_id, started_at DESC, id DESC;
