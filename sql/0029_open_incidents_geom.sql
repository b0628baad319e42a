-- The possible-duplicate search of every filing (server/incidents/service.py) looks for open,
-- not yet linked incidents near the new point. The full GiST index walks every incident near
-- it, most of them closed: 0.30 ms per filing at 1,000,000 incidents, the costliest statement of
-- a filing. This index holds only the open ones (about 5 % of a county's incidents): 0.05 ms.
CREATE INDEX incidents_open_geom_idx ON incidents USING gist (geom)
    WHERE status NOT IN ('closed', 'rejected') AND duplicate_of IS NULL;
