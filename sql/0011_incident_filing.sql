-- Filing support: idempotency keys, photos, keyset paging, and the warning/overdue rules in SQL
-- (so the API, the tiles and the analytics compute them the same way).

-- One row per Idempotency-Key: a retried POST finds the incident its first attempt created.
-- The primary key serialises concurrent retries: the second INSERT waits for the first
-- transaction and then sees its row (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
    user_id integer REFERENCES users (id),
    request_sha256 bytea NOT NULL CHECK (length(request_sha256) = 32),
    incident_id bigint REFERENCES incidents (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Photos are kept in the database, cleaned (re-encoded without EXIF): they commit or roll
-- back with their incident, and a database backup holds them.
CREATE TABLE incident_photos (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    event_id bigint REFERENCES incident_events (id),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    width integer NOT NULL CHECK (width > 0),
    height integer NOT NULL CHECK (height > 0),
    content bytea NOT NULL,
    sha256 bytea NOT NULL CHECK (length(sha256) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_photos_incident_idx ON incident_photos (incident_id);

-- The API pages incidents newest first by (reported_at, id).
CREATE INDEX incidents_reported_id_idx ON incidents (reported_at DESC, id DESC);
CREATE INDEX incidents_status_idx ON incidents (status);

-- Overdue: closed after the due time, or still open past it.
CREATE FUNCTION incident_overdue(status text, due_at timestamptz, closed_at timestamptz,
                                 at timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(closed_at > due_at, false)
           OR (status NOT IN ('closed', 'rejected') AND due_at IS NOT NULL AND at > due_at)
$$;

-- Supervision colour of a case with a due time that is not finished: 'red' past the due time,
-- 'yellow' in the last quarter of the time allowed, else 'green'; NULL when no clock runs.
CREATE FUNCTION incident_warning(status text, dispatched_at timestamptz, due_at timestamptz,
                                 at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN due_at IS NULL OR dispatched_at IS NULL OR status IN ('closed', 'rejected') THEN NULL
        WHEN at >= due_at THEN 'red'
        WHEN at >= due_at - (due_at - dispatched_at) / 4 THEN 'yellow'
        ELSE 'green'
    END
$$;
