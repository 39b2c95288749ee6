#!/usr/bin/env python3
"""Command latency of a running `jono serve`: what an agent waits for each message it sends.

Not a test: it prints figures for BENCHMARKS.md. Standard library only.

    scripts/bench-commands.py [BASE_URL] [MESSAGES] [CONVERSATIONS]

Starts nothing: point it at a server started with rate limits off, e.g.

    JONO_RATE_LIMITS=off target/release/jono --data "$(mktemp -d)" serve --listen 127.0.0.1:18555
    scripts/bench-commands.py http://127.0.0.1:18555 200 8

It signs up, opens a queue, lets customers join and an agent pick them, then sends MESSAGES
messages one after another in one conversation (each answer comes once the message is durable;
reads, not writes, wait for the read models: API.md's Consistency rule), and then the same
number spread over CONVERSATIONS conversations from as many threads at once.
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


def call(method, path, token=None, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, method=method, data=data, headers=headers)
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


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


if __name__ == "__main__":
    main()
