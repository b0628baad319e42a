-- Due times in working time: the county's work calendar (tables work_calendar, work_periods,
-- work_calendar_days) turned into instants; server/worktime.py computes the same in numpy, for
-- millions at once
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- The instant when `amount` of working time has passed after `start`: counting only the working
-- periods of working days. Ending exactly at a period's end gives that end (17:30), not the next
-- morning.
CREATE OR REPLACE FUNCTION work_time_add(start timestamptz, amount interval) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    zone text;
    weekdays smallint[];
    on_day date;
    is_working boolean;
    remaining double precision := extract(epoch FROM amount);
    period record;
    opens timestamptz;
    closes timestamptz;
    available double precision;
BEGIN
    SELECT time_zone, working_weekdays INTO zone, weekdays FROM work_calendar;
    on_day := (start AT TIME ZONE zone)::date;
    -- Ten years is far beyond any time limit; the bound stops a calendar without working days.
    FOR step IN 0..3660 LOOP
        SELECT coalesce((SELECT d.working FROM work_calendar_days d WHERE d.day = on_day),
                        extract(isodow FROM on_day)::smallint = ANY (weekdays))
          INTO is_working;
        IF is_working THEN
            FOR period IN SELECT starts, ends FROM work_periods ORDER BY starts LOOP
                opens := greatest((on_day + period.starts) AT TIME ZONE zone, start);
                closes := (on_day + period.ends) AT TIME ZONE zone;
                IF opens < closes THEN
                    available := extract(epoch FROM closes - opens);
                    IF remaining <= available THEN
                        RETURN opens + make_interval(secs => remaining);
                    END IF;
                    remaining := remaining - available;
                END IF;
            END LOOP;
        END IF;
        on_day := on_day + 1;
    END LOOP;
    RAISE EXCEPTION 'the work calendar has no working time within ten years of %', start
        USING ERRCODE = 'data_exception';
END $$;

-- A due time from a start and a category's limit. Calendar limits are exact durations (48 hours,
-- whatever the session's time zone does to '2 days').
CREATE OR REPLACE FUNCTION due_time(start timestamptz, time_limit interval, unit text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE unit
        WHEN 'working' THEN work_time_add(start, time_limit)
        ELSE start + make_interval(secs => extract(epoch FROM time_limit))
    END
$$;
