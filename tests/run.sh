#!/usr/bin/env bash
# The project's test command: installs what a fresh machine needs, then lints and tests everything.
#   ./tests/run.sh [pytest args...]
# Env: VENV (default .venv), SKIP_APT=1 to never call apt-get,
#      ODOO_SRC (an Odoo 18 source tree: .venv-odoo is built from it by odoo_service/install_local.sh;
#      ODOO_VENV overrides its path), or ODOO_BIN (a command running Odoo 18; else `odoo-bin` on PATH),
#      ODOO_DB_HOST/PORT/USER/PASSWORD (a PostgreSQL for Odoo; default: a throw-away pgserver),
#      REQUIRE_ODOO_TESTS=1 to fail when the addon tests or the Odoo end-to-end tests did not run.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2
export VENV="${VENV:-$root/.venv}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
failures=()

step() { printf '\n==> %s\n' "$*"; }

# --- system packages (Debian): only what is missing ---
if [ "${SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  mapfile -t wanted < <(cat tests/apt-packages.txt tests/*/apt-packages.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
  missing=()
  for pkg in "${wanted[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
      echo "tests/run.sh: could not install system packages: ${missing[*]}" >&2
      exit 2
    fi
  fi
fi

# --- Python environment ---
step "installing the engine and test tools into $VENV"
fastapi_service/install.sh --dev || { echo "tests/run.sh: engine install failed" >&2; exit 2; }
reqs=$(cat tests/requirements.txt tests/*/requirements.txt 2>/dev/null | sed 's/#.*//' | grep -v '^\s*$' | sort -u)
if [ -n "$reqs" ]; then
  stamp="$VENV/.test-requirements"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$reqs" ]; then
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $reqs \
      || { echo "tests/run.sh: test requirements failed to install" >&2; exit 2; }
    echo "$reqs" > "$stamp"
  fi
fi
py="$VENV/bin/python"

# --- lint ---
step "ruff"
"$py" -m ruff check . || failures+=("ruff check")
"$py" -m ruff format --check --quiet . || failures+=("ruff format (run: ruff format .)")
step "mypy (strict, fastapi_service/app)"
"$py" -m mypy --config-file fastapi_service/pyproject.toml fastapi_service/app || failures+=("mypy")

# --- Odoo 18: ODOO_SRC (a source tree) -> .venv-odoo; or ODOO_BIN; or odoo-bin on PATH ---
odoo_cmd="${ODOO_BIN:-}"
if [ -n "${ODOO_SRC:-}" ]; then
  step "Odoo 18 from ODOO_SRC=$ODOO_SRC (odoo_service/install_local.sh)"
  # a wrong ODOO_SRC is one line and an immediate stop, not a long run that fails at the end
  odoo_service/install_local.sh --check || { echo "tests/run.sh: fix ODOO_SRC (or unset it to skip the Odoo tests)" >&2; exit 2; }
  install_log="$(mktemp)"
  if odoo_service/install_local.sh 2>&1 | tee "$install_log"; then
    odoo_cmd="$(tail -n 1 "$install_log")"
  else
    odoo_cmd=""
    failures+=("Odoo install from ODOO_SRC ($(grep -m1 '^install_local:' "$install_log" | cut -c1-200))")
  fi
  rm -f "$install_log"
elif [ -z "$odoo_cmd" ] && command -v odoo-bin >/dev/null 2>&1; then
  odoo_cmd="$(command -v odoo-bin)"
fi

odoo_pg_pid=""
odoo_pg_dir=""
stop_odoo_pg() {
  if [ -n "$odoo_pg_pid" ]; then
    kill -TERM "$odoo_pg_pid" 2>/dev/null
    wait "$odoo_pg_pid" 2>/dev/null
    odoo_pg_pid=""
  fi
  [ -n "$odoo_pg_dir" ] && rm -rf -- "$odoo_pg_dir"
  odoo_pg_dir=""
}
trap stop_odoo_pg EXIT

addon_summary="not run"
if [ -n "$odoo_cmd" ]; then
  export ODOO_BIN="$odoo_cmd"
  # A throw-away PostgreSQL (pgserver from $VENV) for the addon tests and the Odoo e2e tests,
  # unless the caller points at a server of their own (ODOO_DB_HOST / ODOO_DB_PORT).
  if [ -z "${ODOO_DB_HOST:-}${ODOO_DB_PORT:-}" ]; then
    step "throw-away PostgreSQL for Odoo (pgserver)"
    odoo_pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/cbp-odoo-pg.XXXXXX")"
    "$py" odoo_service/local/pg.py serve "$odoo_pg_dir/server" odoo "$("$py" -c 'import secrets; print(secrets.token_urlsafe(18))')" \
      "$odoo_pg_dir/env" >"$odoo_pg_dir/log" 2>&1 &
    odoo_pg_pid=$!
    for _ in $(seq 120); do
      [ -f "$odoo_pg_dir/env" ] || ! kill -0 "$odoo_pg_pid" 2>/dev/null && break
      sleep 0.5
    done
    if [ -f "$odoo_pg_dir/env" ]; then
      set -a
      # shellcheck disable=SC1091
      . "$odoo_pg_dir/env"
      set +a
      export PATH="$PG_BIN:$PATH"
    else
      tail -n 20 "$odoo_pg_dir/log"
      failures+=("throw-away PostgreSQL for Odoo did not start")
    fi
  fi
  step "Odoo addon tests ($odoo_cmd)"
  odoo_log="$(mktemp)"
  ODOO_BIN="$odoo_cmd" tests/odoo/run_odoo_tests.sh 2>&1 | tee "$odoo_log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || failures+=("odoo addon tests")
  addon_summary="$(sed -n 's/^run_odoo_tests: //p' "$odoo_log" | tail -n 1)"
  rm -f "$odoo_log"
else
  echo
  echo "SKIPPED: Odoo addon tests and the Odoo end-to-end tests — no Odoo 18 found (set ODOO_SRC to an Odoo 18 source tree, or ODOO_BIN)."
  [ "${REQUIRE_ODOO_TESTS:-0}" = 1 ] && failures+=("REQUIRE_ODOO_TESTS=1 but no Odoo 18 (ODOO_SRC/ODOO_BIN)")
fi

# --- pytest: engine, deployment, end-to-end ---
step "pytest"
junit="$(mktemp)"
"$py" -m pytest --junitxml="$junit" "$@"
code=$?
[ $code -eq 0 ] || failures+=("pytest (exit $code)")

# --- what ran of the Odoo tests ---
odoo_counts="$("$py" tests/odoo/junit_counts.py "$junit" tests.e2e_odoo tests.local)"
rm -f "$junit"
echo
echo "Odoo addon tests:     $addon_summary"
printf '%s\n' "$odoo_counts"
if [ "${REQUIRE_ODOO_TESTS:-0}" = 1 ]; then
  case "$addon_summary" in
    PASSED*) ;;
    *) failures+=("REQUIRE_ODOO_TESTS=1: the addon tests did not pass ($addon_summary)") ;;
  esac
  if grep -qE ': 0 passed|[1-9][0-9]* skipped|not collected' <<< "$odoo_counts"; then
    failures+=("REQUIRE_ODOO_TESTS=1: an Odoo end-to-end test was skipped or did not run")
  fi
fi

if [ ${#failures[@]} -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo
echo "All checks passed."
