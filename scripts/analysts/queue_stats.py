#!/usr/bin/env python3
"""A queue's statistics from an export of Jono's log, with DuckDB: the figures `jono stats
--queue ID --format json` prints for the whole log (README, "Exporting the log").

    jono export events --format parquet --output events.parquet
    python3 scripts/analysts/queue_stats.py events.parquet QUEUE_ID

It follows the definitions of projections/src/stats/figures.rs:
- a wait runs from CustomerJoinedQueue (or a transfer into the queue) to the pick, the
  customer's leaving (abandoned, timeout, removed) or a transfer out; `joined` counts the waits
  that started, `waiting_now` those that have not ended;
- a handle runs from CustomerPicked in the queue to the conversation's end or its transfer to
  another queue (a picked conversation transferred counts in `transferred_out` too);
- percentiles are nearest-rank over the exact durations (microseconds), then rounded to the
  millisecond; a rating counts for the queue the conversation was in.
"""

import json
import sys

import duckdb

WAITS = """
WITH marks AS (
    SELECT position, "at", conversation_id, agent_id,
        CASE
            WHEN type IN ('CustomerJoinedQueue', 'ConversationTransferred') AND queue_id = $queue THEN 'start'
            WHEN type = 'ConversationTransferred' THEN 'moved'
            WHEN type = 'CustomerPicked' AND queue_id = $queue THEN 'picked'
            WHEN type = 'CustomerLeftQueue' AND queue_id = $queue THEN reason
        END AS mark
    FROM events
    WHERE type IN ('CustomerJoinedQueue', 'ConversationTransferred', 'CustomerPicked', 'CustomerLeftQueue')
), ordered AS (
    SELECT *, LEAD(mark) OVER w AS end_mark, LEAD("at") OVER w AS end_at, LEAD(agent_id) OVER w AS end_agent
    FROM marks WHERE mark IS NOT NULL
    WINDOW w AS (PARTITION BY conversation_id ORDER BY position)
)
SELECT CASE end_mark WHEN 'start' THEN 'transferred' WHEN 'moved' THEN 'transferred' ELSE end_mark END,
       epoch_us(end_at) - epoch_us("at"), end_agent
FROM ordered WHERE mark = 'start'
"""

HANDLES = """
WITH marks AS (
    SELECT position, "at", conversation_id, agent_id,
        CASE
            WHEN type = 'CustomerPicked' AND queue_id = $queue THEN 'pick'
            WHEN type = 'CustomerPicked' THEN 'other'
            WHEN type = 'ConversationEnded' THEN 'ended'
            WHEN type = 'ConversationTransferred' THEN 'transferred'
        END AS mark
    FROM events
    WHERE type IN ('CustomerPicked', 'ConversationEnded', 'ConversationTransferred')
), ordered AS (
    SELECT *, LEAD(mark) OVER w AS end_mark, LEAD("at") OVER w AS end_at
    FROM marks WINDOW w AS (PARTITION BY conversation_id ORDER BY position)
)
SELECT agent_id, end_mark, epoch_us(end_at) - epoch_us("at")
FROM ordered WHERE mark = 'pick' AND end_mark IN ('ended', 'transferred')
"""

RATINGS = """
SELECT count(*), sum(score) FROM events WHERE type = 'ConversationRated' AND queue_id = $queue
"""


def seconds(micros):
    """Microseconds to seconds, rounded to the millisecond (half away from zero)."""
    millis = (micros + 500) // 1000 if micros >= 0 else -((-micros + 500) // 1000)
    return millis / 1000


def nearest_rank(durations, percent):
    if not durations:
        return None
    rank = max(1, -(-percent * len(durations) // 100))
    return sorted(durations)[min(rank, len(durations)) - 1]


def percentiles(durations):
    p50, p90 = nearest_rank(durations, 50), nearest_rank(durations, 90)
    return {
        "p50": None if p50 is None else seconds(p50),
        "p90": None if p90 is None else seconds(p90),
        "max": seconds(max(durations)) if durations else None,
    }


def main(path, queue):
    db = duckdb.connect()
    db.read_parquet(path).create_view("events")
    figures = {"joined": 0, "picked": 0, "abandoned": 0, "timed_out": 0, "transferred_out": 0, "waiting_now": 0}
    waits, handles, agents = [], [], {}
    for outcome, micros, agent in db.execute(WAITS, {"queue": queue}).fetchall():
        figures["joined"] += 1
        if outcome is None:
            figures["waiting_now"] += 1
            continue
        waits.append(micros)
        if outcome == "picked":
            figures["picked"] += 1
            agents.setdefault(agent, {"picked": 0, "handles": []})["picked"] += 1
        elif outcome == "abandoned":
            figures["abandoned"] += 1
        elif outcome == "timeout":
            figures["timed_out"] += 1
        elif outcome == "transferred":
            figures["transferred_out"] += 1
    for agent, outcome, micros in db.execute(HANDLES, {"queue": queue}).fetchall():
        handles.append(micros)
        agents.setdefault(agent, {"picked": 0, "handles": []})["handles"].append(micros)
        if outcome == "transferred":
            figures["transferred_out"] += 1
    count, total = db.execute(RATINGS, {"queue": queue}).fetchone()
    figures["wait_seconds"] = percentiles(waits)
    figures["handle_seconds"] = percentiles(handles)
    figures["rating"] = {"count": count, "mean": (total / count) if count else None}
    figures["per_agent"] = [
        {
            "agent_id": agent,
            "picked": tally["picked"],
            "handle_seconds_p50": None if not tally["handles"] else seconds(nearest_rank(tally["handles"], 50)),
        }
        for agent, tally in sorted(agents.items())
    ]
    json.dump(figures, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: queue_stats.py EVENTS.parquet QUEUE_ID")
    main(sys.argv[1], sys.argv[2])
