-- The live map's "closed today" counter (dashboard/livestats.py) reads closed cases by close
-- time. Without this index it scanned every incident (about 250-400 ms with 1,000,000), and the
-- counters waited for it; the other three counters already had an index.
CREATE INDEX incidents_closed_at_idx ON incidents (closed_at) WHERE status = 'closed';
