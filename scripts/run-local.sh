#!/usr/bin/env bash
# Runs the platform against the local Postgres and RabbitMQ and pushes one
# sample document through it. Services that exist so far are started; each
# new service joins this script when it lands.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/docflow}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export BLOB_STORE_URL=${BLOB_STORE_URL:-file://$PWD/data/blobs}
export INGEST_API_KEYS=${INGEST_API_KEYS:-dev-key}
export LOG_FORMAT=${LOG_FORMAT:-json}
API=http://127.0.0.1:8080
LOGS=data/logs
mkdir -p "$LOGS"

psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'docflow'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE docflow"

cargo build --release --bin ingest-api $( [ -d services/worker ] && echo --bin worker )

pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

LISTEN_ADDR=127.0.0.1:8080 target/release/ingest-api >"$LOGS/ingest-api.log" 2>&1 &
pids+=($!)
if [ -x target/release/worker ]; then
    LISTEN_ADDR=127.0.0.1:8083 target/release/worker >"$LOGS/worker.log" 2>&1 &
    pids+=($!)
fi

for _ in $(seq 60); do curl -fs "$API/readyz" >/dev/null && break; sleep 0.5; done
curl -fs "$API/readyz" >/dev/null || { echo "ingest-api did not become ready; see $LOGS/ingest-api.log"; exit 1; }

sample=$(ls samples/*.txt 2>/dev/null | head -n1 || true)
if [ -z "$sample" ]; then
    sample=$(mktemp --suffix=.txt)
    printf 'INVOICE\nInvoice number: INV-2026-0042\nTotal: 1,234.56 EUR\n' >"$sample"
fi
echo "submitting $sample"
response=$(curl -fsS -H "Authorization: Bearer $INGEST_API_KEYS" \
    -F "document_id=demo-$(date +%s)" -F priority=HIGH -F "file=@$sample" "$API/api/documents")
echo "$response"
status_url=$API$(echo "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tracking_url"])')

final=""
for _ in $(seq 60); do
    status=$(curl -fsS -H "Authorization: Bearer $INGEST_API_KEYS" "$status_url")
    final=$(echo "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_status"])')
    case "$final" in COMPLETED|FAILED|DLQ) break ;; esac
    [ -x target/release/worker ] || break
    sleep 0.5
done
echo "$status" | python3 -m json.tool
echo "job status: $final (logs in $LOGS/)"
if [ -x target/release/worker ] && [ "$final" != COMPLETED ]; then exit 1; fi
