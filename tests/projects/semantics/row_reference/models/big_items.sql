select * from {{ ref('items') }} where qty > 1
