-- 挂账: a case that cannot be solved now is filed on a register by the grid center, with a
-- reason, and resumed later. Its clock stops (due_at is cleared; the register event keeps the
-- old one), so it is not overdue; it is still open, so it counts in the backlog.
ALTER TABLE incidents
    DROP CONSTRAINT incidents_status_check,
    ADD CONSTRAINT incidents_status_check
        CHECK (status IN ('reported', 'accepted', 'rejected', 'dispatched', 'in_progress', 'registered',
                          'resolved', 'verified', 'closed')),
    -- The latest registration (analytics: how long cases stay on the register).
    ADD COLUMN registered_at timestamptz,
    ADD CONSTRAINT incidents_registered_after_report
        CHECK (registered_at IS NULL OR registered_at >= reported_at);
