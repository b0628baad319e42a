-- Patrols filed from the phone (POST /api/v1/patrols, server/patrols/): a retried upload
-- finds the patrol its first attempt recorded, through the same idempotency keys as filings.
ALTER TABLE idempotency_keys ADD COLUMN patrol_id bigint REFERENCES patrols (id);
ALTER TABLE patrols ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX patrols_ended_at_idx ON patrols (ended_at);
CREATE INDEX patrols_user_idx ON patrols (user_id, started_at DESC);
