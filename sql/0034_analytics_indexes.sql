-- The response indicators (server/analytics/response.py) pick the cases of a period by when they
-- were received, fell due, or were closed or rejected after the period's `as_of`: one index for
-- each, so a month's bulletin reads that month's cases, not the county's history.
CREATE INDEX incidents_due_at_idx ON incidents (due_at);
CREATE INDEX incidents_rejected_at_idx ON incidents (rejected_at) WHERE status = 'rejected';
