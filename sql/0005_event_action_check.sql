-- The same rule for event actions (2-40 of a-z and _), cheaper to check. PostgreSQL's regex
-- engine runs the bounded repetition '{2,40}' about three times slower than '+' plus a length
-- test, and every event row pays it: the demo load writes ~7 million events for a million
-- incidents (issue 2: in <= 60 s). Validates existing rows once.
ALTER TABLE incident_events
    DROP CONSTRAINT incident_events_action_check,
    ADD CONSTRAINT incident_events_action_check
        CHECK (action ~ '^[a-z_]+$' AND length(action) BETWEEN 2 AND 40);
