-- The cases open at an earlier `as_of` (the indicators' backlog then, e.g. `compare=last_year`):
-- finished (closed or rejected) after it and reported by then. Through the closed_at index a
-- backlog a year back read every case closed since (half the county's history) from the heap:
-- 1.7 s at 1,000,000 incidents. Here both conditions are checked in the index, and ANALYZE keeps
-- statistics of the expression (a partial index would get none, and the planner, guessing a
-- third of the table, chose a sequential scan). The expression is written once more in
-- server/analytics/response.py (`_finished_after`); a test checks that the planner uses it.
CREATE INDEX incidents_finished_reported_idx ON incidents (coalesce(closed_at, rejected_at), reported_at);
