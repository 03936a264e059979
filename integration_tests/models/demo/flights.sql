-- One row per scheduled flight. `flight_id` is a surrogate key (the source has none);
-- `scheduled_departure` (naive UTC) is the row time; the outcomes are known later. Real
-- wrinkles are kept: dest codes with no airport row, tail numbers with no plane row, flights
-- with no weather row.
select
    row_number() over (
        order by time_hour, minute, carrier, flight, origin, dest, tailnum
    ) as flight_id,
    time_hour + minute * interval 1 minute as scheduled_departure,
    time_hour,
    carrier,
    flight as flight_number,
    tailnum,
    origin,
    dest,
    dep_delay,
    arr_delay,
    dep_time is null as cancelled,
    -- The demo's static target (flights.yml): the departure was more than 15 minutes late, or
    -- the flight was cancelled. A label that combines columns is modelled here, in SQL.
    coalesce(dep_time is null or dep_delay > 15, false) as late_or_cancelled,
    air_time,
    distance,
    -- When the outcomes become known (meta.rfm.available_at in flights.yml): the departure
    -- (the scheduled time for a cancellation), and the arrival at the gate (air time plus 30
    -- minutes of taxiing; never, when the flight has no air time).
    departed_at,
    departed_at + to_minutes(air_time + 30) as arrived_at
from (
    select
        *,
        time_hour + minute * interval 1 minute
        + to_minutes(greatest(coalesce(dep_delay, 0), 0)) as departed_at
    from {{ ref('raw_flights') }}
)
