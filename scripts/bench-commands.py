#!/usr/bin/env python3
"""Command latency of a running `jono serve`: what an agent waits for each message it sends.

Not a test: it prints figures for BENCHMARKS.md. Standard library only.

    scripts/bench-commands.py [BASE_URL] [MESSAGES] [CONVERSATIONS] [CUSTOMERS]

Starts nothing: point it at a server started with rate limits off, e.g.

    JONO_RATE_LIMITS=off target/release/jono --data "$(mktemp -d)" serve --listen 127.0.0.1:18555
    scripts/bench-commands.py http://127.0.0.1:18555 200 8

It signs up, opens a queue, lets customers join and an agent pick them, then sends MESSAGES
messages one after another in one conversation (each answer comes once the message is durable;
reads, not writes, wait for the read models: API.md's Consistency rule), and then the same
number spread over CONVERSATIONS conversations from as many threads at once. With CUSTOMERS,
that many customers then join a fresh queue and are picked, one after another: does a join and
a pick cost more in a queue that has served many?
"""

import json
import statistics
import sys
import threading
import time
import urllib.request
import uuid

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:18555"
MESSAGES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
CONVERSATIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 8
CUSTOMERS = int(sys.argv[4]) if len(sys.argv) > 4 else 0


def call(method, path, token=None, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, method=method, data=data, headers=headers)
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def by_history(what, latencies):
    """The p50 of the first WINDOW against the last WINDOW, and of each WINDOW-th stretch."""
    count = len(latencies)
    window = min(200, max(1, count // 2))
    stretches = [latencies[i:i + window] for i in range(0, count - window + 1, window)]
    if len(stretches) < 2:
        return
    medians = [statistics.median(stretch) * 1000 for stretch in stretches]
    last = statistics.median(latencies[-window:]) * 1000
    print(f"{what} by history: p50 of 1-{window} {medians[0]:.1f} ms, of {count - window + 1}-"
          f"{count} {last:.1f} ms (x{last / medians[0]:.2f}); every {window}: "
          + " ".join(f"{m:.1f}" for m in medians))


def main():
    owner = call("POST", "/v1/signup", None, {
        "organization": "Bench", "name": "Owner",
        "email": f"bench-{uuid.uuid4().hex}@example.com", "password": "benchmark password",
    })
    token = owner["token"]
    queue = call("POST", f"/v1/orgs/{owner['organization_id']}/queues", token,
                 {"name": "Bench"})["queue_id"]
    call("POST", f"/v1/queues/{queue}/handlers", token, {"agent_id": owner["agent_id"]})
    call("POST", f"/v1/queues/{queue}/open", token)
    conversations = []
    for i in range(max(1, CONVERSATIONS)):
        call("POST", f"/v1/queues/{queue}/join", None, {"metadata": {"name": f"C{i}"}})
        conversations.append(call("POST", f"/v1/queues/{queue}/pick", token)["conversation_id"])

    # One after another, in one conversation.
    latencies = []
    for i in range(MESSAGES):
        start = time.perf_counter()
        call("POST", f"/v1/conversations/{conversations[0]}/messages", token, {"text": f"m{i}"})
        latencies.append(time.perf_counter() - start)
    # Does a message cost more as its conversation's history grows (invariant 10)?
    by_history("messages", latencies)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"sequential: {MESSAGES} messages, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"{MESSAGES / sum(latencies):.0f} messages/s")

    # At once, one thread per conversation.
    each = max(1, MESSAGES // len(conversations))

    def send(conversation):
        for i in range(each):
            call("POST", f"/v1/conversations/{conversation}/messages", token, {"text": f"p{i}"})

    threads = [threading.Thread(target=send, args=(c,)) for c in conversations]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    total = each * len(conversations)
    print(f"concurrent: {total} messages over {len(conversations)} conversations in "
          f"{elapsed:.2f} s, {total / elapsed:.0f} messages/s")

    if CUSTOMERS:
        queue = call("POST", f"/v1/orgs/{owner['organization_id']}/queues", token,
                     {"name": "History"})["queue_id"]
        call("POST", f"/v1/queues/{queue}/handlers", token, {"agent_id": owner["agent_id"]})
        call("POST", f"/v1/queues/{queue}/open", token)
        joins, picks = [], []
        for i in range(CUSTOMERS):
            start = time.perf_counter()
            call("POST", f"/v1/queues/{queue}/join", None, {"metadata": {"name": f"H{i}"}})
            joins.append(time.perf_counter() - start)
            start = time.perf_counter()
            call("POST", f"/v1/queues/{queue}/pick", token)
            picks.append(time.perf_counter() - start)
        by_history("joins", joins)
        by_history("picks", picks)


if __name__ == "__main__":
    main()
