select sensor, kind, reading from {{ ref('example_measurements') }}
