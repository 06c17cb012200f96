#!/usr/bin/env bash
# Regenerates `.sqlx/`, the query data sqlx's macros check `crates/job-store`
# against when building without a database, from a fresh database migrated
# from `migrations/`. With --check it changes nothing and fails when the
# committed data is not what the queries and the schema give now (CI runs
# that; run this script without --check after changing a query or a
# migration, and commit `.sqlx/`).
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[ "${1:-}" = "--check" ] && check=true

server=${SQLX_PREPARE_SERVER:-postgres://postgres@127.0.0.1:5432}
db="docflow_sqlx_prepare_$$"
psql -X -q "$server/postgres" -c "CREATE DATABASE $db"
out=$(mktemp -d)
trap 'psql -X -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; rm -rf "$out"' EXIT
for migration in migrations/*.sql; do
    psql -X -q -v ON_ERROR_STOP=1 "$server/$db" -f "$migration" >/dev/null
done

# The macros expand again only when the crate is compiled again.
touch crates/job-store/src/lib.rs
SQLX_OFFLINE=false DATABASE_URL="$server/$db" SQLX_OFFLINE_DIR="$out" cargo check --quiet -p job-store --all-targets
touch crates/job-store/src/lib.rs

if $check; then
    if ! diff -r "$out" .sqlx >/dev/null; then
        echo "error: .sqlx/ is stale: run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
        diff -r "$out" .sqlx | head -20 >&2 || true
        exit 1
    fi
    echo ".sqlx/ is current ($(ls .sqlx | wc -l) queries)"
else
    rm -rf .sqlx
    cp -r "$out" .sqlx
    chmod 755 .sqlx
    echo "wrote $(ls .sqlx | wc -l) queries to .sqlx/"
fi
