#!/usr/bin/env bash
# Runs the platform against the local Postgres and RabbitMQ and pushes a
# sample document through it: every service that exists is started, the
# document is uploaded, and the script waits for its job to finish.
# Services keep running until Ctrl-C (or pass --once to stop after the demo).
set -euo pipefail
cd "$(dirname "$0")/.."

once=false
[ "${1:-}" = "--once" ] && once=true

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/docflow}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export BLOB_STORE_URL=${BLOB_STORE_URL:-file://$PWD/data/blobs}
export INGEST_API_KEYS=${INGEST_API_KEYS:-dev-key}
export ADMIN_TOKENS=${ADMIN_TOKENS:-dev-admin:write}
export LOG_FORMAT=${LOG_FORMAT:-json}
# One key and one token for the demo's own requests (the settings may list several).
api_key=${INGEST_API_KEYS%%,*}
API=http://127.0.0.1:8080
LOGS=data/logs
mkdir -p "$LOGS"

# What this script itself runs; say all that is missing at once.
missing=()
for tool in cargo curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "make run needs: ${missing[*]}" >&2
    for tool in "${missing[@]}"; do
        case $tool in
            cargo) echo "  - cargo: install Rust 1.95 or newer with rustup (https://rustup.rs), then open a new shell" >&2 ;;
            curl) echo "  - curl: sudo apt-get install curl" >&2 ;;
            python3) echo "  - python3: sudo apt-get install python3" >&2 ;;
        esac
    done
    exit 1
fi
rust_version=$(rustc --version 2>/dev/null | awk '{print $2}' || true)
required=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if [ -n "$rust_version" ] && [ "$(printf '%s\n%s\n' "$required" "$rust_version" | sort -V | head -n1)" != "$required" ]; then
    echo "Rust $rust_version is older than the $required this workspace needs: rustup update stable" >&2
    exit 1
fi

# The database DATABASE_URL names, created through the server's maintenance
# database if it does not exist yet (needs psql and a user with CREATEDB).
db_name=${DATABASE_URL%%\?*}; db_name=${db_name##*/}
query=; [[ $DATABASE_URL == *\?* ]] && query="?${DATABASE_URL#*\?}"
maintenance_url="${DATABASE_URL%%\?*}"; maintenance_url="${maintenance_url%/*}/postgres$query"
if command -v psql >/dev/null 2>&1; then
    psql "$maintenance_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'" | grep -q 1 \
        || psql "$maintenance_url" -qc "CREATE DATABASE \"$db_name\""
else
    echo "psql not found (sudo apt-get install postgresql-client): not creating database $db_name; it must exist" >&2
fi

# name:port, in start order.
services=(ingest-api:8080 worker:8083 dlq-admin:8081 metrics-tracker:8082)
bins=(--bin docflow-migrate)
for entry in "${services[@]}"; do
    name=${entry%%:*}
    [ -d "services/$name" ] && bins+=(--bin "$name")
done
cargo build "${bins[@]}"

# Migrations as a deployment runs them: one step first, then services that
# only check the schema (README, "Migrations").
target/debug/docflow-migrate
export SKIP_MIGRATIONS=true

pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

for entry in "${services[@]}"; do
    name=${entry%%:*}; port=${entry##*:}
    [ -x "target/debug/$name" ] || continue
    LISTEN_ADDR=127.0.0.1:$port "target/debug/$name" >"$LOGS/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 120); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "$name did not become ready; see $LOGS/$name.log"; exit 1; }
    echo "$name ready on :$port"
done

sample=samples/invoice_en.pdf
echo "uploading $sample"
response=$(curl -fsS -H "Authorization: Bearer $api_key" \
    -F "document_id=demo-$(date +%s)" -F priority=HIGH -F "file=@$sample" "$API/api/documents")
echo "$response"
status_url=$API$(echo "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tracking_url"])')

final=""
for _ in $(seq 120); do
    status=$(curl -fsS -H "Authorization: Bearer $api_key" "$status_url")
    final=$(echo "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_status"])')
    case "$final" in COMPLETED|FAILED|DLQ) break ;; esac
    sleep 0.5
done
echo "$status" | python3 -m json.tool
echo "job status: $final (logs in $LOGS/)"
[ "$final" = COMPLETED ] || exit 1

# What the pipeline found in the document, as a client reads it back.
result_url=${status_url%/status}/result
echo "extracted fields ($result_url):"
RESULT=$(curl -fsS -H "Authorization: Bearer $api_key" "$result_url") python3 <<'PY'
import json, os
body = json.loads(os.environ["RESULT"])
result = body["result"]
kind = result["classification"]
print(f"  document type   {kind['document_type']} (confidence {kind['confidence']:.2f})")
for name, field in result["fields"].items():
    if isinstance(field, dict) and "value" in field:
        value = str(field["value"])
        print(f"  {name:15} {value:32} confidence {field['confidence']:.2f}  source {field.get('source', '-')}")
for ticket in body["tickets"]:
    print(f"  ticket: {ticket['rule']} ({ticket['severity']}): {ticket['message']}")
PY

if [ -x target/debug/metrics-tracker ]; then
    admin_token=${ADMIN_TOKENS%%:*}
    for _ in $(seq 20); do
        report=$(curl -fsS -H "Authorization: Bearer $admin_token" "http://127.0.0.1:8082/api/metrics/report?hours=1" || true)
        echo "$report" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["total_executions"] > 0 else 1)' 2>/dev/null && break
        sleep 0.5
    done
    echo "metrics-tracker report for the last hour:"
    echo "$report" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k: r[k] for k in ("total_executions","successful_executions","success_rate","p95_total_duration_ms","throughput_documents_per_hour")}, indent=2))' || true
fi
if ! $once; then
    echo "services are running; Ctrl-C stops them"
    wait
fi
