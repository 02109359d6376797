{{ config(materialized='table') }}
-- Three rows: ordinary values, the extremes of each type, and nulls. (HUGEINT's extremes as
-- Arrow carries them: 38 digits.)
select * from (values
    (1, cast(-128 as tinyint), cast(200 as utinyint), cast(60000 as usmallint), cast(4000000000 as uinteger),
     cast(18446744073709551615 as ubigint), cast(99999999999999999999999999999999999999 as hugeint),
     cast(12.34 as decimal(10, 2)), cast(1234567890123456789012345678.0123456789 as decimal(38, 10)),
     cast(1.5 as real), cast(0.1 as double), time '13:45:30.123456',
     timestamptz '2026-03-01 10:00:00.5+02', uuid '0f0e0d0c-0b0a-4908-8706-050403020100',
     '\x00\xFFduck'::blob, [1, null, 3]::integer[], ['a', 'b"c']::varchar[],
     {'name': 'x', 'amount': cast(2.50 as decimal(6, 2)), 'day': date '2026-01-02'}::struct(name varchar, amount decimal(6, 2), day date),
     [{'k': 1}, {'k': null}]::struct(k integer)[]),
    (2, cast(127 as tinyint), cast(0 as utinyint), cast(0 as usmallint), cast(0 as uinteger),
     cast(0 as ubigint), cast(-99999999999999999999999999999999999999 as hugeint),
     cast(-99999999.99 as decimal(10, 2)), cast(-0.0000000001 as decimal(38, 10)),
     cast(-3.25 as real), cast(1e300 as double), time '00:00:00',
     timestamptz '1970-01-01 00:00:00+00', uuid 'ffffffff-ffff-ffff-ffff-ffffffffffff',
     ''::blob, []::integer[], []::varchar[],
     {'name': null, 'amount': null, 'day': null}::struct(name varchar, amount decimal(6, 2), day date),
     []::struct(k integer)[]),
    (3, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)
) as t(id, i8, u8, u16, u32, u64, huge, price, big_decimal, ratio, share, at_time, at_instant, ref, payload,
       counts, tags, detail, items)
