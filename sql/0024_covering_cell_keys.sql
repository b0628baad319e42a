-- A tile reads one contiguous key range of the cell rollups; with the counts in the index the
-- read is an index-only scan of neighbouring index pages instead of one heap page per cell
-- (cells were inserted in random order, so their heap rows are scattered).
ALTER TABLE tiles.incident_cells
    DROP CONSTRAINT incident_cells_pkey,
    ADD PRIMARY KEY (level, bx, by, cx, cy, category_code) INCLUDE (n, n_open);
ALTER TABLE tiles.incident_cells_detail
    DROP CONSTRAINT incident_cells_detail_pkey,
    ADD PRIMARY KEY (level, bx, by, cx, cy, category_code, status, month) INCLUDE (n);
ANALYZE tiles.incident_cells;
ANALYZE tiles.incident_cells_detail;
