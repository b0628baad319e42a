-- Credentials that end: notifications on `gridwatch_auth` that make the change feed
-- (server/feed) end the streams of a revoked token, a changed or removed user, or an ended
-- login session
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- The change feed (server/feed) ends the streams of a revoked token at once, and those of a
-- user who was deactivated or whose role or department changed (they reconnect with their new
-- rights, or not at all).
CREATE OR REPLACE FUNCTION auth_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_TABLE_NAME = 'api_tokens' THEN
        PERFORM pg_notify('gridwatch_auth',
                          json_build_object('kind', 'token', 'token_id', OLD.id, 'user_id', OLD.user_id)::text);
    ELSE
        PERFORM pg_notify('gridwatch_auth', json_build_object('kind', 'user', 'user_id', OLD.id)::text);
    END IF;
    RETURN NULL;
END $fn$;

CREATE OR REPLACE TRIGGER api_tokens_revoked_feed AFTER UPDATE OF revoked_at ON api_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION auth_changed();
CREATE OR REPLACE TRIGGER api_tokens_deleted_feed AFTER DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION auth_changed();
CREATE OR REPLACE TRIGGER users_rights_changed_feed AFTER UPDATE OF active, role, department_id ON users
    FOR EACH ROW
    WHEN ((OLD.active, OLD.role, OLD.department_id) IS DISTINCT FROM (NEW.active, NEW.role, NEW.department_id))
    EXECUTE FUNCTION auth_changed();
CREATE OR REPLACE TRIGGER users_deleted_feed AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION auth_changed();

CREATE OR REPLACE FUNCTION login_session_ended() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('gridwatch_auth',
                      json_build_object('kind', 'session', 'session_id', OLD.id, 'user_id', OLD.user_id)::text);
    RETURN NULL;
END $fn$;

CREATE OR REPLACE TRIGGER login_sessions_ended_feed AFTER DELETE ON login_sessions
    FOR EACH ROW EXECUTE FUNCTION login_session_ended();
