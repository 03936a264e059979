select
    tailnum,
    year as year_built,
    type as plane_type,
    manufacturer,
    model,
    engines,
    seats,
    speed,
    engine
from {{ ref('raw_planes') }}
