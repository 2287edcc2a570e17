#!/usr/bin/env bash
# One command to a running platform.
#
#   ./start.sh            Docker Compose when a Docker engine answers (`docker info`), else local mode
#   ./start.sh --local    the engine alone, without Docker: .venv + embedded PostgreSQL
#   ./start.sh --help
#
# Both modes first create .env from .env.example with fresh secrets (never overwriting one).
# Guide: docs/deployment.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_FILE="$ROOT/.env"
ENV_EXAMPLE="$ROOT/.env.example"

usage() {
    cat <<'USAGE'
Usage: ./start.sh [--local | --docker] [--help]

Starts the chatbot platform.

  (no option)  Docker Compose if `docker info` succeeds, otherwise local mode.
  --docker     Docker Compose only; fail if no Docker engine answers.
  --local      Local mode: no Docker. Installs the engine into .venv (fastapi_service/install.sh),
               runs it on 127.0.0.1:$PORT with an embedded PostgreSQL, and stops it on Ctrl-C.
               Odoo is not started in local mode.
  -h, --help   Show this help.

On first run .env is created from .env.example with freshly generated secrets; an existing .env
is never overwritten.

Environment:
  PORT                 local mode: engine port on 127.0.0.1 (default 8000)
  VENV                 local mode: virtualenv path (default <repo>/.venv), passed to install.sh
  START_TIMEOUT        seconds to wait for the services to become healthy
                       (default 900 with Docker, 600 in local mode)
  CHATBOT_INSTALL_CMD  local mode: executable run instead of fastapi_service/install.sh
                       (for tests only)
USAGE
}

say() { printf '%s\n' "$*"; }
die() {
    printf 'start.sh: %s\n' "$*" >&2
    exit 1
}

# --- .env ---------------------------------------------------------------------------------------

# Prints a random secret: `urlsafe` (passwords) or `webhook` (whsec_ + base64 of 32 bytes).
generate_secret() {
    local kind="$1"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$kind" <<'PY'
import base64, secrets, sys
if sys.argv[1] == "webhook":
    print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
else:
    print(secrets.token_urlsafe(24))
PY
    elif [ "$kind" = webhook ]; then
        printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
    else
        head -c 24 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_'
        printf '\n'
    fi
}

ensure_env_file() {
    if [ -e "$ENV_FILE" ]; then
        say "Using existing $ENV_FILE (never overwritten)."
        return
    fi
    [ -f "$ENV_EXAMPLE" ] || die "$ENV_EXAMPLE is missing; cannot create .env"
    local content="" line name
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ "$line" =~ ^([A-Z][A-Z0-9_]*)=change-me$ ]]; then
            name="${BASH_REMATCH[1]}"
            if [ "$name" = WEBHOOK_SECRET ]; then
                line="$name=$(generate_secret webhook)"
            else
                line="$name=$(generate_secret urlsafe)"
            fi
        fi
        content+="$line"$'\n'
    done <"$ENV_EXAMPLE"
    # noclobber: the shell opens .env with O_EXCL, so a file that appeared meanwhile is kept.
    (
        umask 077
        set -o noclobber
        printf '%s' "$content" >"$ENV_FILE"
    ) 2>/dev/null || die "could not create $ENV_FILE (does it exist already?)"
    say "Created $ENV_FILE with fresh secrets (keep it private; it is git-ignored)."
    ENV_CREATED=1
}

ENV_CREATED=0

# Value of NAME: the environment first, then .env, then DEFAULT.
setting() {
    local name="$1" default="$2" value
    value="${!name:-}"
    if [ -z "$value" ] && [ -f "$ENV_FILE" ]; then
        value="$(sed -n "s/^${name}=//p" "$ENV_FILE" | tail -n 1)"
    fi
    printf '%s\n' "${value:-$default}"
}

# --- Docker Compose -----------------------------------------------------------------------------

# 0 when every container of SERVICE reports healthy; 2 when one has exited.
service_health() {
    local service="$1" status
    status="$(docker compose ps --all --format json "$service" 2>/dev/null || true)"
    if printf '%s' "$status" | grep -Eq '"State": ?"(exited|dead)"'; then
        return 2
    fi
    local healths
    healths="$(printf '%s' "$status" | grep -Eo '"Health": ?"[a-z]*"' || true)"
    [ -n "$healths" ] || return 1
    if printf '%s\n' "$healths" | grep -Ev '"healthy"$' | grep -q .; then
        return 1
    fi
    return 0
}

run_docker() {
    docker compose version >/dev/null 2>&1 ||
        die "the Docker Compose plugin (\`docker compose\`) is missing; see https://docs.docker.com/compose/install/"
    ensure_env_file
    cd "$ROOT"
    say "Building and starting the stack (first run: image builds and model pull take a while)..."
    docker compose up -d --build || die "\`docker compose up -d --build\` failed; see its output above"

    local timeout deadline pending service rc
    timeout="${START_TIMEOUT:-900}"
    deadline=$((SECONDS + timeout))
    pending=(api odoo)
    while [ "${#pending[@]}" -gt 0 ]; do
        local still=()
        for service in "${pending[@]}"; do
            rc=0
            service_health "$service" || rc=$?
            if [ "$rc" -eq 2 ]; then
                die "service '$service' exited; see \`docker compose logs $service\`"
            elif [ "$rc" -ne 0 ]; then
                still+=("$service")
            fi
        done
        pending=("${still[@]+"${still[@]}"}")
        [ "${#pending[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "not healthy after ${timeout}s: ${pending[*]}; see \`docker compose ps\` and \`docker compose logs ${pending[*]}\`"
        fi
        sleep 3
    done

    local odoo_port engine_port
    odoo_port="$(setting ODOO_HOST_PORT 8069)"
    engine_port="$(setting ENGINE_HOST_PORT 8000)"
    say ""
    say "The platform is up:"
    if [ "$ENV_CREATED" = 1 ]; then
        say "  Odoo         http://localhost:$odoo_port   user admin, password $(setting ODOO_ADMIN_USER_PASSWORD '')"
        say "               (shown this once; it is ODOO_ADMIN_USER_PASSWORD in .env: change it in Odoo, see docs/deployment.md)"
    else
        say "  Odoo         http://localhost:$odoo_port   user admin (first-start password: ODOO_ADMIN_USER_PASSWORD in .env)"
    fi
    say "  Engine docs  http://localhost:$engine_port/docs"
    say "  Demo         http://localhost:$engine_port/demo"
    say "Stop with \`docker compose down\` (data stays in the named volumes)."
}

# --- Local mode ---------------------------------------------------------------------------------

ENGINE_PID=""

stop_engine() {
    trap - INT TERM EXIT
    if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
        say "Stopping the engine (and its embedded PostgreSQL)..."
        kill -TERM "$ENGINE_PID" 2>/dev/null || true
        # `wait` returns the moment the engine exits (polling `kill -0` would also see an exited
        # but not yet reaped engine as alive); a watchdog escalates to SIGKILL after 30 s.
        ( sleep 30 && kill -KILL "$ENGINE_PID" ) </dev/null >/dev/null 2>&1 &
        local watchdog=$!
        wait "$ENGINE_PID" 2>/dev/null || true
        kill "$watchdog" 2>/dev/null || true
        wait "$watchdog" 2>/dev/null || true
    fi
    ENGINE_PID=""
}

check_python() {
    command -v python3 >/dev/null 2>&1 ||
        die "python3 was not found on PATH. Local mode needs Python 3.11 or newer (e.g. \`apt-get install python3 python3-venv\`), or run with Docker."
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "python3 is $(python3 -c 'import platform; print(platform.python_version())'); local mode needs Python 3.11 or newer."
}

check_port_free() {
    local port="$1"
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
        die "PORT must be a number from 1 to 65535, not '$port'"
    python3 - "$port" <<'PY' || die "port $port on 127.0.0.1 is already in use; stop what holds it or pick another one, e.g. PORT=8001 ./start.sh --local"
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
try:
    sock.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    sock.close()
PY
}

# 0 once GET URL answers 200.
http_ok() {
    python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

run_local() {
    check_python
    local port="${PORT:-8000}"
    check_port_free "$port"
    ensure_env_file

    export VENV="${VENV:-$ROOT/.venv}"
    local install_cmd="${CHATBOT_INSTALL_CMD:-$ROOT/fastapi_service/install.sh}"
    [ -x "$install_cmd" ] || [ -f "$install_cmd" ] || die "installer $install_cmd not found"
    say "Installing the engine into $VENV (first run downloads a few hundred MB)..."
    local rc=0
    if [ -x "$install_cmd" ]; then "$install_cmd" || rc=$?; else bash "$install_cmd" || rc=$?; fi
    if [ "$rc" -ne 0 ]; then
        die "installing the engine failed (exit $rc); see the messages above, fix the cause and run ./start.sh --local again"
    fi
    local python="$VENV/bin/python"
    [ -x "$python" ] || die "the installer finished but $python does not exist"

    trap 'stop_engine; exit 130' INT
    trap 'stop_engine; exit 143' TERM
    trap 'stop_engine' EXIT

    cd "$ROOT"
    say "Starting the engine on http://127.0.0.1:$port (embedded PostgreSQL unless DATABASE_URL is set)..."
    HOST=127.0.0.1 PORT="$port" ENVIRONMENT=local \
        PYTHONPATH="$ROOT/fastapi_service${PYTHONPATH:+:$PYTHONPATH}" \
        "$python" -m app &
    ENGINE_PID=$!

    local timeout deadline base="http://127.0.0.1:$port"
    timeout="${START_TIMEOUT:-600}"
    deadline=$((SECONDS + timeout))
    until http_ok "$base/readyz"; do
        if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
            rc=0
            wait "$ENGINE_PID" || rc=$?
            ENGINE_PID=""
            die "the engine exited (code $rc) before it was ready; see its log above"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "the engine was not ready after ${timeout}s ($base/readyz)"
        sleep 1
    done

    say ""
    say "The engine is ready:"
    say "  API docs  $base/docs"
    say "  Demo      $base/demo"
    say "Press Ctrl-C to stop it."
    rc=0
    wait "$ENGINE_PID" || rc=$?
    ENGINE_PID=""
    trap - INT TERM EXIT
    exit "$rc"
}

# --- main ---------------------------------------------------------------------------------------

main() {
    local mode=auto
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --local) mode=local ;;
        --docker) mode=docker ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown option: $1"
            ;;
        esac
        shift
    done

    if [ "$mode" = auto ]; then
        if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
            mode=docker
        else
            say "No Docker engine answers (\`docker info\`): starting in local mode."
            mode=local
        fi
    elif [ "$mode" = docker ]; then
        command -v docker >/dev/null 2>&1 || die "docker was not found on PATH"
        docker info >/dev/null 2>&1 || die "no Docker engine answers (\`docker info\` failed); is the daemon running?"
    fi

    if [ "$mode" = docker ]; then
        run_docker
    else
        run_local
    fi
}

main "$@"
