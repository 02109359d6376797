select
    (select {'r': r, 'n': n, 'label': label} from {{ ref('d1') }}) as d1,
    (select {'r': r, 'doubled': doubled} from {{ ref('d2') }}) as d2,
    (select {'r': r, 'total': total} from {{ ref('d3') }}) as d3,
    (select count(x) from {{ ref('boom') }}) as boom
