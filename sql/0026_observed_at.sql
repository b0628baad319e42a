-- When the reporter saw the problem, if it differs from when the report arrived: the phone page
-- queues reports made offline and sends them later. reported_at stays the arrival time (the
-- workflow clock and the analytics start there); observed_at is shown beside it.
-- The service refuses times more than 5 minutes ahead of the server clock or older than 7 days;
-- the table keeps only the part that does not depend on the clock.
ALTER TABLE incidents
    ADD COLUMN observed_at timestamptz,
    ADD CONSTRAINT incidents_observed_before_arrival
        CHECK (observed_at IS NULL OR observed_at <= reported_at + interval '5 minutes');
