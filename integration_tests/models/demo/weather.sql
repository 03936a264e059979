-- Composite key (origin, time_hour). The source repeats 3 (origin, hour) pairs across the
-- daylight-saving change; keep the first so the key is unique.
select origin, time_hour, temp, dewp, humid, wind_dir, wind_speed, wind_gust, precip, pressure, visib
from {{ ref('raw_weather') }}
qualify row_number() over (partition by origin, time_hour order by year, month, day, hour) = 1
