-- One row per scheduled flight. `flight_id` is a surrogate key (the source has none);
-- `scheduled_departure` (naive UTC) is the row time. Real wrinkles are kept: dest codes with
-- no airport row, tail numbers with no plane row, flights with no weather row.
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
    air_time,
    distance
from {{ ref('raw_flights') }}
