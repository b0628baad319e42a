-- Login sessions kept on the server (server/auth/sessions.py): the browser's signed cookie
-- holds only a random secret, so a logout or a deactivation ends every copy of the cookie at
-- once, and the change feed (server/feed) ends the session's streams.

CREATE TABLE login_sessions (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sha256 of the cookie's secret (256 random bits): a copied table opens no session.
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Refreshed at most once a minute by requests: the session ends `session_hours` after it.
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    remote_addr text NOT NULL DEFAULT ''
);
CREATE INDEX login_sessions_user_idx ON login_sessions (user_id);
CREATE INDEX login_sessions_last_seen_idx ON login_sessions (last_seen_at);

CREATE FUNCTION login_session_ended() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('gridwatch_auth',
                      json_build_object('kind', 'session', 'session_id', OLD.id, 'user_id', OLD.user_id)::text);
    RETURN NULL;
END $fn$;

CREATE TRIGGER login_sessions_ended_feed AFTER DELETE ON login_sessions
    FOR EACH ROW EXECUTE FUNCTION login_session_ended();
