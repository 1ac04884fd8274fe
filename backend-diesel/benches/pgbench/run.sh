#!/usr/bin/env bash
# Where a PostgreSQL enqueue's time goes on the server: outband's one-job
# insert beside a raw two-column insert, run by pgbench (one client,
# prepared statements, each statement its own durable transaction), the
# scripts in turn for ROUNDS rounds of SECONDS each; prints each script's
# transactions a second as a share of the raw insert's.
#
#   backend-diesel/benches/pgbench/run.sh [ROUNDS] [SECONDS]
#
# Works in tables of its own prefixes in the database of PGURL (default
# postgres://postgres@127.0.0.1:5432/test), dropped at the end:
#   obb_    the schema of every migration: the enqueue as outband runs it;
#   obbt_   the same with the statement trigger on inserts that sent the
#           NOTIFY before migration 0016 (its down migration), the insert
#           without its own pg_notify;
#   obbi_   the schema without the ready indexes jobs_ready and jobs_free;
#   obbp_   the jobs table's columns with only its primary key, no NOTIFY.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-6}
seconds=${2:-3}
url=${PGURL:-postgres://postgres@127.0.0.1:5432/test}
psql() { command psql -q -X -v ON_ERROR_STOP=1 "$url" "$@"; }

schema() { # prefix
  for up in migrations/postgres/*.up.sql; do sed "s/{p}/$1/g" "$up"; echo; done
}
drop() {
  psql >/dev/null <<'SQL'
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables
           WHERE schemaname = current_schema() AND tablename ~ '^obb[tip]?_' LOOP
    EXECUTE format('DROP TABLE %I CASCADE', r.tablename);
  END LOOP;
  FOR r IN SELECT CAST(p.oid AS regprocedure) AS f FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname ~ '^obb[tip]?_' LOOP
    EXECUTE 'DROP FUNCTION ' || r.f;
  END LOOP;
END $$;
SQL
}
work=$(mktemp -d)
trap 'drop; rm -rf "$work"' EXIT

drop
for p in obb_ obbt_ obbi_; do schema $p | psql >/dev/null; done
sed "s/{p}/obbt_/g" migrations/postgres/0016_enqueue_notify.down.sql | psql >/dev/null
psql -c "DROP INDEX obbi_jobs_ready; DROP INDEX obbi_jobs_free;
  CREATE TABLE obbp_jobs (LIKE obb_jobs INCLUDING DEFAULTS INCLUDING IDENTITY);
  ALTER TABLE obbp_jobs ADD PRIMARY KEY (id);
  CREATE TABLE obb_raw (id BIGSERIAL PRIMARY KEY, args BYTEA NOT NULL)" >/dev/null

now="CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
insert() { # table, conditions of the WHERE
  cat <<SQL
\set z 0
INSERT INTO $1 (command, args, queue, ordering_key, priority, max_attempts, attempt, state,
  token, run_at, enqueued_at, timeout_ms, limit_key, limit_max, rate_key, rate_max, rate_per_us)
SELECT 'outband::bench::noop'::text, '\\x01'::bytea, 'q'::text, NULL::text, :z::int, 4::int, 0, 0,
  0, COALESCE(NULL::bigint, $now + :z::bigint), $now, NULL::bigint, NULL::text,
  NULL::bigint, NULL::text, NULL::bigint, NULL::bigint
WHERE $2 set_config('synchronous_commit', 'on', true) IS NOT NULL RETURNING id AS n;
SQL
}
echo "INSERT INTO obb_raw (args) VALUES ('\\x01'::bytea);" > "$work/raw.sql"
insert obb_jobs "pg_notify('obb_jobs', '') IS NOT NULL AND" > "$work/enqueue.sql"
insert obbt_jobs "" > "$work/trigger.sql"
insert obbi_jobs "pg_notify('obbi_jobs', '') IS NOT NULL AND" > "$work/no-ready-indexes.sql"
insert obbp_jobs "" > "$work/primary-key-only.sql"

scripts=(raw enqueue trigger no-ready-indexes primary-key-only)
declare -A total
for script in "${scripts[@]}"; do total[$script]=0; done
for round in $(seq 1 "$rounds"); do
  line="round $round:"
  for script in "${scripts[@]}"; do
    tps=$(pgbench -n -M prepared -c 1 -T "$seconds" -f "$work/$script.sql" "$url" 2>/dev/null \
      | awk '/^tps/ { printf "%d", $3 }')
    total[$script]=$(( ${total[$script]} + tps ))
    line="$line $script $tps/s"
  done
  echo "$line"
done
echo
echo "| script | of the raw insert |"
echo "|---|---:|"
for script in "${scripts[@]}"; do
  awk -v s="$script" -v n="${total[$script]}" -v r="${total[raw]}" \
    'BEGIN { printf "| %s | %.1f %% |\n", s, 100 * n / r }'
done
