-- Incidents: the append-only event log, and the overdue and supervision-colour rules in SQL, so
-- the API, the tiles and the analytics compute them the same way
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- The event log is append-only: an event, once written, is history.
CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Overdue: closed after the due time, or still open past it.
CREATE OR REPLACE FUNCTION incident_overdue(status text, due_at timestamptz, closed_at timestamptz,
                                            at timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(closed_at > due_at, false)
           OR (status NOT IN ('closed', 'rejected') AND due_at IS NOT NULL AND at > due_at)
$$;

-- Supervision colour of a case with a due time that is not finished: 'red' past the due time,
-- 'yellow' in the last quarter of the time allowed, else 'green'; NULL when no clock runs.
CREATE OR REPLACE FUNCTION incident_warning(status text, dispatched_at timestamptz, due_at timestamptz,
                                            at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN due_at IS NULL OR dispatched_at IS NULL OR status IN ('closed', 'rejected') THEN NULL
        WHEN at >= due_at THEN 'red'
        WHEN at >= due_at - (due_at - dispatched_at) / 4 THEN 'yellow'
        ELSE 'green'
    END
$$;
