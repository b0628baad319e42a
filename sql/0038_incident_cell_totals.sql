-- A total per cell of the incidents pyramid, over all categories: what an unfiltered `incidents`
-- tile reads. A zoom-11 tile draws 32 x 32 cells; summing them from the per-category rows read
-- about 8,000 rows and grouped them by category (19 ms of CPU per tile, 64 ms p95 when a
-- browser asks for six at once on two cores); the totals are 1,024 rows (6 ms).
-- The fold that keeps it current is in sql/functions/tiles_incidents.sql.

CREATE TABLE tiles.incident_cell_totals (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    n integer NOT NULL,
    n_open integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy) INCLUDE (n, n_open)
);

-- Incidents already stored: the per-category rows hold them (pending changes are folded by the
-- new fold, which writes both).
LOCK TABLE tiles.incident_cells IN SHARE MODE;
INSERT INTO tiles.incident_cell_totals (level, bx, by, cx, cy, n, n_open)
SELECT level, bx, by, cx, cy, sum(n), sum(n_open)
  FROM tiles.incident_cells
 GROUP BY level, bx, by, cx, cy
HAVING sum(n) <> 0 OR sum(n_open) <> 0
 ORDER BY level, bx, by, cx, cy;
