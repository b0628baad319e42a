-- Authentication: API tokens (stored as sha256 of a random secret) and failed-login records.
-- Both live in the database so that every gunicorn worker sees the same state.

CREATE TABLE api_tokens (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sha256 of the token: a stolen table gives no usable token, and the token is random
    -- with 256 bits, so a fast hash is enough (no salt or stretching needed).
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    label text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE login_failures (
    id bigserial PRIMARY KEY,
    username text NOT NULL,
    remote_addr text NOT NULL DEFAULT '',
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username_at_idx ON login_failures (lower(username), at);
CREATE INDEX login_failures_addr_at_idx ON login_failures (remote_addr, at);

COMMENT ON TABLE login_failures IS
    'Failed password logins, counted per username and per address to rate-limit guessing.';
