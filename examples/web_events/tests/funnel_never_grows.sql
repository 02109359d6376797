-- Reaching step k requires reaching step k-1, so users never grow along the funnel.
select f.step_number, f.users, previous.users as previous_users
from {{ ref('funnel') }} as f
inner join {{ ref('funnel') }} as previous
    on previous.step_number = f.step_number - 1
where f.users > previous.users
