"""The bundled analysis computed in plain Python from its definitions.

An independent oracle for tests and the benchmark: it shares no code with the SQL,
so agreement between the two means something. Lists are sorted the way the API
documents: by group_id (Unicode code points, i.e. UTF-8 bytes), then event_value.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping

Row = Mapping[str, Any]


def analyse(rows: Iterable[Row]) -> list[dict[str, list[dict[str, Any]]]]:
    pairs = [(r["group_id"], r["event_value"]) for r in rows]
    sums: dict[str, int] = defaultdict(int)
    values: dict[str, set[int]] = defaultdict(set)
    for group, value in pairs:
        sums[group] += value
        values[group].add(value)
    per_pair = Counter(pairs)
    per_group = Counter(g for g, _ in pairs)
    per_value = Counter(v for _, v in pairs)

    def by_key(d: Mapping[Any, Any]) -> list[Any]:
        return sorted(d)

    pair_hist = [
        {"group_id": g, "event_value": v, "group_event_value_count": per_pair[(g, v)]} for g, v in by_key(per_pair)
    ]
    group_hist = [{"group_id": g, "group_count": per_group[g]} for g in by_key(per_group)]
    return [
        {
            "group_sums": [{"group_id": g, "value_sum": sums[g]} for g in by_key(sums)],
            "group_sets": [{"group_id": g, "group_value_set": sorted(values[g])} for g in by_key(values)],
            "group_event_value_histogram": pair_hist,
            "group_histogram": group_hist,
            "hist_event_values": [{"event_value": v, "event_value_count": per_value[v]} for v in by_key(per_value)],
            "hist_group_event_values": pair_hist,
            "hist_groups": group_hist,
        }
    ]


ANIMALS = [
    {"group_id": g, "event_value": v}
    for g, v in [("🦆", 13), ("🐇", 8), ("🐰", 2), ("🐰", 5), ("🦆", 3), ("🐇", 23), ("🐇", 1), ("🦆", 17), ("🐰", 5)]
]
