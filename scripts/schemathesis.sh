#!/usr/bin/env bash
# Fuzzes a running Jono against its own OpenAPI document with schemathesis:
#
#   scripts/schemathesis.sh BASE_URL TOKEN
#
# Installs schemathesis and everything it needs, each at the version and hash of
# scripts/python/requirements.lock, into a throwaway virtualenv of Debian's Python
# (scripts/python/venv.sh), fetches
# BASE_URL/v1/openapi.json and calls every operation with generated requests (valid and
# invalid), as the agent whose bearer TOKEN is given. Fails on any 5xx, any response whose
# body breaks its schema, and any status the document does not list. Bounded: at most
# SCHEMATHESIS_EXAMPLES examples per operation and SCHEMATHESIS_TIME_LIMIT seconds in all.
#
# So that requests reach real objects and not only 404s, the path parameters `org`, `agent`,
# `queue` and `c` are pinned to the token's first organization, its own agent, that
# organization's first queue and a customer conversation that joins it (when it is open).
# `POST /v1/logout` and `DELETE /v1/orgs/{org}/members/{agent}/sessions` (pinned to its own agent)
# end the token, so they run last, on their own.
set -euo pipefail

EXAMPLES=${SCHEMATHESIS_EXAMPLES:-20}
TIME_LIMIT=${SCHEMATHESIS_TIME_LIMIT:-600}
SEED=${SCHEMATHESIS_SEED:-1}

if (($# != 2)); then
    echo "usage: $0 BASE_URL TOKEN" >&2
    exit 2
fi
base_url=${1%/}
token=$2

work=$(mktemp -d /tmp/jono-schemathesis.XXXXXX)
trap 'rm -rf "$work"' EXIT

# scripts/test.sh installs the tools once and says where (JONO_PYTHON_VENV); run alone, this
# installs them itself.
if [[ -n ${JONO_PYTHON_VENV:-} && -x ${JONO_PYTHON_VENV}/bin/schemathesis ]]; then
    venv=$JONO_PYTHON_VENV
else
    echo "installing schemathesis (scripts/python/requirements.lock) into a virtualenv" >&2
    bash "$(dirname "$0")/python/venv.sh" "$work/venv"
    venv=$work/venv
fi

# The objects the fuzzing aims at, as a config file of pinned path parameters.
BASE_URL=$base_url TOKEN=$token "$venv/bin/python" - >"$work/schemathesis.toml" <<'PY'
import json, os, urllib.request

base, token = os.environ["BASE_URL"], os.environ["TOKEN"]

def call(method, path, body=None, auth=True):
    request = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if auth:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except Exception:
        return None

pinned = {}
me = call("GET", "/v1/me")
if me is None:
    raise SystemExit("GET /v1/me failed: is the token an agent's?")
pinned["path.agent"] = me["agent_id"]
if me["organizations"]:
    org = me["organizations"][0]["id"]
    pinned["path.org"] = org
    queues = call("GET", f"/v1/orgs/{org}/queues") or []
    if queues:
        pinned["path.queue"] = queues[0]["id"]
        joined = call("POST", f"/v1/queues/{queues[0]['id']}/join",
                      {"metadata": {"name": "Fuzz"}}, auth=False)
        if joined:
            pinned["path.c"] = joined["conversation_id"]
print("[parameters]")
for key, value in pinned.items():
    print(f'"{key}" = "{value}"')
PY
echo "pinned path parameters:" >&2
sed 1d "$work/schemathesis.toml" >&2

# Run from the temporary directory: schemathesis keeps a cache where it runs.
#
# One worker thread, on purpose: with two, hypothesis parses lambda sources in both threads, and
# CPython 3.11's `ast` module keeps its recursion depth per interpreter, not per thread
# (python/cpython#106905), so two overlapping parses die now and then with "SystemError: AST
# constructor recursion depth mismatch" — a failure of the tool, not of Jono. The phases run one
# after another, so one worker means one thread that generates.
cd "$work"
st() {
    timeout "$TIME_LIMIT" "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" \
        run "$base_url/v1/openapi.json" \
        --url "$base_url" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
        --max-examples "$EXAMPLES" \
        --seed "$SEED" \
        --workers 1 \
        --request-timeout 30 \
        --no-color \
        "$@"
}

status=0
st --exclude-operation-id logout --exclude-operation-id endMemberSessions || status=$?

# A run whose token stopped working midway tested only the 401 path: say so and fail.
alive=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base_url/v1/me")
if [[ $alive != 200 ]]; then
    echo "the token stopped working during the run (GET /v1/me: $alive)" >&2
    status=1
fi

st --include-operation-id endMemberSessions || status=$?
st --include-operation-id logout || status=$?

if ((status == 0)); then
    echo "schemathesis: passed" >&2
else
    echo "schemathesis: FAILED" >&2
fi
exit "$status"
