-- Login throttling (server/auth/ratelimit.py): one row per key (a username with an address, an
-- address, a username), counted by one INSERT ... ON CONFLICT per attempt *before* the password
-- is checked. The old table counted failures after the check: 30 concurrent wrong passwords for
-- one username all passed the count and got 20 checks (limit 5). Past a key's free failures
-- each further attempt waits twice as long as the one before (1 s, 2 s, ... 10 min) instead of
-- a hard lock that let anyone lock an account out from anywhere.
CREATE TABLE login_throttle (
    key text PRIMARY KEY,
    free integer NOT NULL,  -- attempts without delay in a window
    failures integer NOT NULL,
    last_at timestamptz NOT NULL,  -- the last attempt counted; a quiet window starts it afresh
    blocked_until timestamptz,
    refused boolean NOT NULL DEFAULT false  -- whether the latest attempt was refused (its answer)
);
CREATE INDEX login_throttle_last_at_idx ON login_throttle (last_at);

COMMENT ON TABLE login_throttle IS
    'Login attempts per key (user+address, address, user) in the current window; see sql/0042.';

DROP TABLE login_failures;
