#!/usr/bin/env bash
# Run the chatbot_platform addon's tests on a fresh, throw-away Odoo 18 database.
#
#   ODOO_BIN="/path/venv/bin/python /path/odoo-18/setup/odoo" tests/odoo/run_odoo_tests.sh
#
# Env: ODOO_BIN (required, or `odoo-bin` on PATH; may contain spaces between words),
#      ODOO_DB_HOST (default: local socket), ODOO_DB_PORT (5432), ODOO_DB_USER (current user),
#      ODOO_DB_PASSWORD (empty), ODOO_ADDONS_PATH (Odoo's own addons; default: asked from Odoo),
#      KEEP_DB=1 to keep the database and log for inspection,
#      ODOO_TEST_TAGS to run a subset (Odoo's --test-tags, default /chatbot_platform; e.g.
#      /chatbot_platform:TestContractDelivery,/chatbot_platform:TestDelivery).
# Exit status: 0 when every test passed and the addon logged no WARNING/ERROR; 1 otherwise;
# 2 when Odoo or PostgreSQL is not usable. This script never installs Odoo.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
addon=chatbot_platform
custom_addons="$root/odoo_service/custom_addons"

odoo_bin="${ODOO_BIN:-$(command -v odoo-bin || true)}"
if [ -z "$odoo_bin" ]; then
  echo "run_odoo_tests: set ODOO_BIN to a command that runs Odoo 18" >&2
  exit 2
fi
read -r -a odoo_cmd <<< "$odoo_bin"
# `python <checkout>/setup/odoo` (release layout) imports `odoo` from the checkout itself
for word in "${odoo_cmd[@]}"; do
  if [[ "$word" == */setup/odoo && -f "$word" ]]; then
    export PYTHONPATH="$(cd "$(dirname "$word")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
  fi
done

db_user="${ODOO_DB_USER:-$(id -un)}"
db_port="${ODOO_DB_PORT:-5432}"
db_host="${ODOO_DB_HOST:-}"
db_args=(--db_port="$db_port" --db_user="$db_user")
pg_args=(-p "$db_port" -U "$db_user")
if [ -n "$db_host" ]; then
  db_args+=(--db_host="$db_host")
  pg_args+=(-h "$db_host")
fi
if [ -n "${ODOO_DB_PASSWORD:-}" ]; then
  db_args+=(--db_password="$ODOO_DB_PASSWORD")
  export PGPASSWORD="$ODOO_DB_PASSWORD"
fi

# A local Debian cluster that is installed but stopped may be started (never installed here).
if [ -z "$db_host" ] && command -v pg_lsclusters >/dev/null 2>&1; then
  while read -r version cluster port status _rest; do
    if [ "$port" = "$db_port" ] && [ "$status" = down ]; then
      echo "run_odoo_tests: starting PostgreSQL cluster $version/$cluster"
      pg_ctlcluster "$version" "$cluster" start || { echo "run_odoo_tests: could not start $version/$cluster" >&2; exit 2; }
    fi
  done < <(pg_lsclusters --no-header 2>/dev/null)
fi
if ! psql "${pg_args[@]}" -d postgres -Atqc "select 1" >/dev/null 2>&1; then
  echo "run_odoo_tests: cannot connect to PostgreSQL as $db_user (port $db_port${db_host:+, host $db_host})" >&2
  exit 2
fi

workdir="$(mktemp -d)"
db="cbp_test_$(date +%Y%m%d%H%M%S)_$$"
log="$workdir/odoo-test.log"
conf="$workdir/odoo.conf"

cleanup() {
  if [ "${KEEP_DB:-0}" = 1 ]; then
    echo "run_odoo_tests: kept database $db and log $log"
    return
  fi
  dropdb "${pg_args[@]}" --if-exists "$db" >/dev/null 2>&1 || echo "run_odoo_tests: could not drop $db" >&2
  if [ -n "${data_dir:-}" ] && [ -d "$data_dir/filestore/$db" ]; then
    rm -rf -- "${data_dir:?}/filestore/$db"
  fi
  rm -rf -- "$workdir"
}
trap cleanup EXIT

# Odoo's own addons directories, as Odoo computes them (works for git and release layouts).
"${odoo_cmd[@]}" -c "$conf" -s --stop-after-init "${db_args[@]}" >/dev/null 2>&1
odoo_addons="${ODOO_ADDONS_PATH:-$(sed -n 's/^addons_path *= *//p' "$conf")}"
data_dir="$(sed -n 's/^data_dir *= *//p' "$conf")"
if [ -z "$odoo_addons" ]; then
  echo "run_odoo_tests: could not run '$odoo_bin' (no addons path reported)" >&2
  exit 2
fi

# a free port for HttpCase tests, so a running Odoo on 8069 does not get in the way
http_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18069)"

echo "run_odoo_tests: installing $addon with tests on database $db"
"${odoo_cmd[@]}" "${db_args[@]}" -d "$db" -i "$addon" --test-enable --stop-after-init \
  --addons-path="$odoo_addons,$custom_addons" --log-level=test --http-port="$http_port" \
  --without-demo=all --test-tags="${ODOO_TEST_TAGS:-/$addon}" >"$log" 2>&1
odoo_status=$?

# -- parse the log ------------------------------------------------------------------------------
result_line="$(grep -E "odoo\.tests\.result: [0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests" "$log" | tail -n 1)"
failed="$(sed -nE 's/.*: ([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests.*/\1/p' <<< "$result_line")"
errors="$(sed -nE 's/.*: ([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests.*/\2/p' <<< "$result_line")"
total="$(sed -nE 's/.*: ([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests.*/\3/p' <<< "$result_line")"
started="$(grep -cE "odoo\.addons\.$addon\.tests\.[a-z_]+: Starting " "$log")"
# WARNING/ERROR/CRITICAL lines emitted by the addon's own modules, or by Odoo about its files/models
addon_problems="$(grep -E "^[0-9-]+ [0-9:,]+ [0-9]+ (WARNING|ERROR|CRITICAL) " "$log" \
  | grep -E "odoo\.addons\.$addon(\.|:| )|$addon/|\bchatbot\.[a-z_.]+\b" \
  | grep -vE "odoo\.addons\.$addon\.tests\.[a-z_]+: (FAIL|ERROR):" )"
problem_count=0
[ -n "$addon_problems" ] && problem_count="$(wc -l <<< "$addon_problems")"

status=0
reasons=()
if [ "$odoo_status" -ne 0 ]; then status=1; reasons+=("odoo exited with $odoo_status"); fi
if [ -z "$result_line" ]; then status=1; reasons+=("no test result line in the log"); fi
if [ "${failed:-0}" != 0 ] || [ "${errors:-0}" != 0 ]; then status=1; reasons+=("test failures"); fi
if [ "$started" -eq 0 ]; then status=1; reasons+=("no $addon test ran"); fi
if [ "$problem_count" -ne 0 ]; then status=1; reasons+=("$problem_count WARNING/ERROR line(s) from the addon"); fi

if [ "$status" -ne 0 ]; then
  echo "---- failures, errors and addon warnings ----"
  grep -nE "(FAIL|ERROR):|Traceback|^[A-Za-z.]*(Error|Exception)\b" "$log" | head -n 80
  [ -n "$addon_problems" ] && printf '%s\n' "$addon_problems" | head -n 40
  echo "---- last lines of the log ----"
  tail -n 30 "$log"
  [ "${KEEP_DB:-0}" = 1 ] || cp "$log" "${TMPDIR:-/tmp}/odoo-$addon-tests-last.log" && echo "full log: ${TMPDIR:-/tmp}/odoo-$addon-tests-last.log"
fi

summary="$addon: ${total:-?} tests, ${failed:-?} failed, ${errors:-?} errors, $problem_count addon warning(s)"
if [ "$status" -eq 0 ]; then
  echo "run_odoo_tests: PASSED — $summary"
else
  echo "run_odoo_tests: FAILED — $summary (${reasons[*]})"
fi
exit "$status"
