-- Time limits in working time: a category's limit runs either in calendar time (a hazard does
-- not wait for Monday) or in the county's working hours (a pile of garbage has "1 working day").
-- The work calendar: daily working hours in the county's time zone on working weekdays, plus
-- dated exceptions (public holidays, and the weekend days worked instead, 调休).
-- due_time() is the one place a due time is computed (dispatch, extension, resuming a case).

ALTER TABLE categories
    ADD COLUMN time_limit_unit text NOT NULL DEFAULT 'calendar'
        CHECK (time_limit_unit IN ('calendar', 'working'));

-- One working day is 7 working hours (08:30-12:00, 14:00-17:30). Categories whose work is done
-- in office hours get working-time limits; emergencies keep calendar time. Only seeded values
-- are converted: a limit an admin already changed stays as it is.
UPDATE categories SET time_limit_unit = 'working', time_limit = c.working
  FROM (VALUES ('sanitation', interval '1 day', interval '7 hours'),        -- 1 working day
               ('public_facility', interval '3 days', interval '21 hours'), -- 3 working days
               ('resident_service', interval '3 days', interval '21 hours'),
               ('dispute', interval '5 days', interval '35 hours')         -- 5 working days
       ) AS c(code, seeded, working)
 WHERE categories.code = c.code AND categories.time_limit = c.seeded;

-- The calendar's settings: one row.
CREATE TABLE work_calendar (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    time_zone text NOT NULL DEFAULT 'Asia/Shanghai',
    -- ISO day numbers: 1 = Monday ... 7 = Sunday.
    working_weekdays smallint[] NOT NULL DEFAULT '{1,2,3,4,5}'
        CHECK (working_weekdays <@ '{1,2,3,4,5,6,7}'::smallint[])
);
INSERT INTO work_calendar DEFAULT VALUES;

-- The working hours of a working day, local time. The admin API keeps them from overlapping.
CREATE TABLE work_periods (
    starts time NOT NULL PRIMARY KEY,
    ends time NOT NULL,
    CHECK (ends > starts)
);
INSERT INTO work_periods VALUES ('08:30', '12:00'), ('14:00', '17:30');

-- Exceptions to the weekdays: a holiday on a weekday (working = false), or a weekend day that is
-- worked (调休, working = true). Entered each year from the State Council's holiday notice.
CREATE TABLE work_calendar_days (
    day date PRIMARY KEY,
    working boolean NOT NULL,
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 100)
);

-- The instant when `amount` of working time has passed after `start`: counting only the working
-- periods of working days. Ending exactly at a period's end gives that end (17:30), not the next
-- morning.
CREATE FUNCTION work_time_add(start timestamptz, amount interval) RETURNS timestamptz
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
CREATE FUNCTION due_time(start timestamptz, time_limit interval, unit text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE unit
        WHEN 'working' THEN work_time_add(start, time_limit)
        ELSE start + make_interval(secs => extract(epoch FROM time_limit))
    END
$$;
