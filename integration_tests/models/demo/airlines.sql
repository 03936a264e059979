select carrier, name as airline_name
from {{ ref('raw_airlines') }}
