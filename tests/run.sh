#!/usr/bin/env bash
# The project's test command: installs what a fresh machine needs, then lints and tests everything.
#   ./tests/run.sh [pytest args...]
# Env: VENV (default .venv), ODOO_BIN (command running Odoo 18; else `odoo-bin` on PATH is used),
#      SKIP_APT=1 to never call apt-get.
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

# --- Odoo addon tests (need an Odoo 18 install) ---
odoo_cmd="${ODOO_BIN:-}"
if [ -z "$odoo_cmd" ] && command -v odoo-bin >/dev/null 2>&1; then odoo_cmd="$(command -v odoo-bin)"; fi
if [ -n "$odoo_cmd" ]; then
  step "Odoo addon tests ($odoo_cmd)"
  ODOO_BIN="$odoo_cmd" tests/odoo/run_odoo_tests.sh || failures+=("odoo addon tests")
  export ODOO_BIN="$odoo_cmd"
else
  echo
  echo "SKIPPED: Odoo addon tests — no Odoo 18 install found (set ODOO_BIN or put odoo-bin on PATH)."
fi

# --- pytest: engine, deployment, end-to-end ---
step "pytest"
"$py" -m pytest "$@"
code=$?
[ $code -eq 0 ] || failures+=("pytest (exit $code)")

if [ ${#failures[@]} -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo
echo "All checks passed."
