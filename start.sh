#!/usr/bin/env bash
# One command to a running platform.
#
#   ./start.sh            Docker Compose when a Docker engine answers (`docker info`), else local mode
#   ./start.sh --local    without Docker: the engine (.venv + embedded PostgreSQL), and Odoo 18 on the
#                         same PostgreSQL when ODOO_SRC names an Odoo 18 source tree; a ready demo
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
Usage: ./start.sh [--local | --docker] [--no-demo] [--help]

Starts the chatbot platform.

  (no option)  Docker Compose if `docker info` succeeds, otherwise local mode.
  --docker     Docker Compose only; fail if no Docker engine answers.
  --local      Local mode: no Docker. Installs the engine into .venv (fastapi_service/install.sh),
               runs it on 127.0.0.1:$PORT with an embedded PostgreSQL, and stops it on Ctrl-C.
               With ODOO_SRC (an Odoo 18 source tree) also builds .venv-odoo
               (odoo_service/install_local.sh) and runs Odoo on 127.0.0.1:$ODOO_PORT against the
               same PostgreSQL (database and role `odoo`), chatbot_platform installed and wired to
               the engine; the `admin` password is ODOO_ADMIN_USER_PASSWORD in .env.
  --no-demo    Local mode: do not create the "Demo" chatbot (docs/*.md + a publishable key) on the
               first start.
  -h, --help   Show this help.

On first run .env is created from .env.example with freshly generated secrets; an existing .env
is never overwritten.

Environment:
  PORT                 local mode: engine port on 127.0.0.1 (default 8000)
  ODOO_SRC             local mode: Odoo 18 source tree; unset = the engine alone
  ODOO_PORT            local mode: Odoo port on 127.0.0.1 (default 8069)
  ODOO_VENV            local mode: Odoo's virtualenv (default <repo>/.venv-odoo)
  STATE_DIR            local mode: data (PostgreSQL, Odoo's files, the demo key); default
                       $XDG_DATA_HOME/chatbot-platform, or STATE_DIR in .env
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
ODOO_PID=""
PGDATA_DIR=""
DEMO=1

# TERM a child, wait for it (a watchdog escalates to SIGKILL after 30 s).
stop_child() {
    local pid="$1" what="$2"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    say "Stopping $what..."
    kill -TERM "$pid" 2>/dev/null || true
    # `wait` returns the moment the child exits (polling `kill -0` would also see an exited but
    # not yet reaped child as alive).
    # (its own `sleep` is killed with it, so that no process outlives start.sh)
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        sleep 30 &
        nap=$!
        wait "$nap" && kill -KILL "$pid"
    ) </dev/null >/dev/null 2>&1 &
    local watchdog=$!
    wait "$pid" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
}

# Odoo first (it uses the engine's PostgreSQL), then the engine, which stops the database.
stop_local() {
    trap - INT TERM EXIT
    stop_child "$ODOO_PID" "Odoo"
    ODOO_PID=""
    stop_child "$ENGINE_PID" "the engine (and its embedded PostgreSQL)"
    ENGINE_PID=""
    # The engine stops its database; should it have been killed first, stop the database here.
    if [ -n "$PGDATA_DIR" ] && [ -x "$VENV/bin/python" ]; then
        "$VENV/bin/python" "$ROOT/odoo_service/local/pg.py" stop "$PGDATA_DIR" || true
    fi
}

check_python() {
    command -v python3 >/dev/null 2>&1 ||
        die "python3 was not found on PATH. Local mode needs Python 3.11 or newer (e.g. \`apt-get install python3 python3-venv\`), or run with Docker."
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "python3 is $(python3 -c 'import platform; print(platform.python_version())'); local mode needs Python 3.11 or newer."
}

check_port_free() {
    local port="$1" name="$2"
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
        die "$name must be a number from 1 to 65535, not '$port'"
    python3 - "$port" <<'PY' || die "port $port on 127.0.0.1 is already in use; stop what holds it or pick another one, e.g. $name=$((port + 1)) ./start.sh --local"
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

# Wait until URL answers 200 while PID lives; WHAT names it in errors.
wait_http() {
    local url="$1" pid="$2" what="$3" deadline="$4" rc
    until http_ok "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0
            wait "$pid" || rc=$?
            die "$what exited (code $rc) before it was ready; see its log${5:+ ($5)}"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "$what was not ready after ${START_TIMEOUT:-600}s ($url)"
        sleep 1
    done
}

# Odoo 18 from ODOO_SRC: installs .venv-odoo, sets ODOO_CMD (array) and ODOO_SRC_DIR.
prepare_odoo() {
    local out rc=0
    say "Installing Odoo 18 from $ODOO_SRC into ${ODOO_VENV:-$ROOT/.venv-odoo} (first run: a few minutes)..."
    out="$("$ROOT/odoo_service/install_local.sh")" || rc=$?
    [ "$rc" -eq 0 ] || die "installing Odoo from ODOO_SRC failed (exit $rc); see the install_local message above"
    read -r -a ODOO_CMD <<<"$(printf '%s\n' "$out" | tail -n 1)"
    ODOO_SRC_DIR="$(cd "$ODOO_SRC" && pwd)"
}

# Joins the engine's PostgreSQL, ensures role `odoo`, writes Odoo's config; first start installs
# chatbot_platform and sets the admin password.
setup_odoo() {
    local python="$1" state_dir="$2" odoo_port="$3" engine_url="$4"
    local db_password pg host port bindir
    db_password="$(setting ODOO_DB_PASSWORD "")"
    [ -n "$db_password" ] && [ "$db_password" != change-me ] || die "ODOO_DB_PASSWORD is not set in $ENV_FILE"
    ODOO_USER_PASSWORD="$(setting ODOO_ADMIN_USER_PASSWORD "")"
    if [ -z "$ODOO_USER_PASSWORD" ] && ! grep -q '^ODOO_ADMIN_USER_PASSWORD=' "$ENV_FILE"; then
        # a .env made before this setting existed: add it (nothing else in .env changes)
        ODOO_USER_PASSWORD="$(generate_secret urlsafe)"
        printf 'ODOO_ADMIN_USER_PASSWORD=%s\n' "$ODOO_USER_PASSWORD" >>"$ENV_FILE" ||
            die "could not add ODOO_ADMIN_USER_PASSWORD to $ENV_FILE"
        say "Added a fresh ODOO_ADMIN_USER_PASSWORD (the Odoo admin password) to $ENV_FILE."
    fi
    [ -n "$ODOO_USER_PASSWORD" ] && [ "$ODOO_USER_PASSWORD" != change-me ] ||
        die "ODOO_ADMIN_USER_PASSWORD in $ENV_FILE is empty or change-me; set a password there"
    pg="$("$python" "$ROOT/odoo_service/local/pg.py" role "$state_dir/pgdata" odoo "$db_password" \
        "$ENGINE_PID" "${START_TIMEOUT:-600}")" ||
        die "could not prepare role odoo in the engine's embedded PostgreSQL ($state_dir/pgdata); see the engine's log above"
    read -r host port bindir <<<"$pg"

    local odoo_dir="$state_dir/odoo"
    mkdir -p "$odoo_dir"
    ODOO_CONF="$odoo_dir/odoo.conf"
    ODOO_LOG="$odoo_dir/odoo.log"
    (
        umask 077
        cat >"$ODOO_CONF" <<CONF
; written by start.sh --local on every start; edit start.sh or .env instead
[options]
db_host = $host
db_port = $port
db_user = odoo
db_password = $db_password
db_name = odoo
dbfilter = ^odoo\$
list_db = False
admin_passwd = $(setting ODOO_ADMIN_PASSWORD "")
addons_path = $ODOO_SRC_DIR/odoo/addons,$ROOT/odoo_service/custom_addons
data_dir = $odoo_dir/data
http_interface = 127.0.0.1
http_port = $odoo_port
workers = 0
max_cron_threads = 1
without_demo = all
proxy_mode = False
logfile = $ODOO_LOG
CONF
    )
    # Odoo's environment: the addon reads the engine's URLs and the shared secret from it.
    WEBHOOK_SECRET="$(setting WEBHOOK_SECRET "")"
    export PYTHONPATH="$ODOO_SRC_DIR${PYTHONPATH:+:$PYTHONPATH}"
    export ENGINE_URL="$engine_url" ENGINE_PUBLIC_URL="$engine_url" WEBHOOK_SECRET

    local installed
    installed="$(PGPASSWORD="$db_password" "$bindir/psql" -h "$host" -p "$port" -U odoo -d odoo -Atqc \
        "SELECT state FROM ir_module_module WHERE name = 'chatbot_platform'" 2>/dev/null || true)"
    if [ "$installed" != installed ]; then
        say "First start of Odoo: creating database odoo and installing chatbot_platform (a minute or two)..."
        rm -f "$odoo_dir/admin-password-set"
        "${ODOO_CMD[@]}" -c "$ODOO_CONF" -i chatbot_platform --stop-after-init --no-http ||
            die "installing chatbot_platform into Odoo failed; see $ODOO_LOG"
    fi
    # Until this has succeeded once for this database, its `admin` still has the password `admin`:
    # Odoo is not started before (an interrupted first start repeats this step, not the install).
    if [ ! -f "$odoo_dir/admin-password-set" ]; then
        ODOO_ADMIN_USER_PASSWORD="$ODOO_USER_PASSWORD" "${ODOO_CMD[@]}" shell -c "$ODOO_CONF" --no-http \
            <"$ROOT/odoo_service/local/set_admin_password.py" ||
            die "could not set the Odoo admin password; see $ODOO_LOG"
        : >"$odoo_dir/admin-password-set"
    fi
}

run_local() {
    check_python
    local port="${PORT:-8000}" odoo_port="${ODOO_PORT:-8069}" with_odoo=0
    check_port_free "$port" PORT
    if [ -n "${ODOO_SRC:-}" ]; then
        with_odoo=1
        "$ROOT/odoo_service/install_local.sh" --check ||
            die "ODOO_SRC must name an Odoo 18 source tree (or unset it to run the engine alone)"
        check_port_free "$odoo_port" ODOO_PORT
        [ "$odoo_port" != "$port" ] || die "PORT and ODOO_PORT must differ"
    fi
    ensure_env_file
    if [ "$with_odoo" = 1 ] && [ -n "$(setting DATABASE_URL "")" ]; then
        die "local mode with Odoo runs both on the embedded PostgreSQL; unset DATABASE_URL (or unset ODOO_SRC)"
    fi

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
    [ "$with_odoo" = 0 ] || prepare_odoo

    local state_dir
    state_dir="$(setting STATE_DIR "${XDG_DATA_HOME:-$HOME/.local/share}/chatbot-platform")"
    mkdir -p "$state_dir" || die "cannot create STATE_DIR $state_dir"
    state_dir="$(cd "$state_dir" && pwd)"

    [ "$with_odoo" = 0 ] || PGDATA_DIR="$state_dir/pgdata"
    trap 'stop_local; exit 130' INT
    trap 'stop_local; exit 143' TERM
    trap 'stop_local' EXIT

    cd "$ROOT"
    local base="http://127.0.0.1:$port" odoo_url="http://127.0.0.1:$odoo_port"
    local odoo_env=()
    [ "$with_odoo" = 0 ] || odoo_env=(ODOO_URL="$odoo_url")
    say "Starting the engine on $base (embedded PostgreSQL in $state_dir unless DATABASE_URL is set)..."
    env HOST=127.0.0.1 PORT="$port" ENVIRONMENT=local STATE_DIR="$state_dir" "${odoo_env[@]}" \
        PYTHONPATH="$ROOT/fastapi_service${PYTHONPATH:+:$PYTHONPATH}" \
        "$python" -m app &
    ENGINE_PID=$!

    local deadline
    deadline=$((SECONDS + ${START_TIMEOUT:-600}))
    if [ "$with_odoo" = 1 ]; then
        # Odoo needs only the database, which the engine starts before it loads its model: Odoo's
        # install (first start) and start-up overlap the engine's.
        setup_odoo "$python" "$state_dir" "$odoo_port" "$base"
        say "Starting Odoo on $odoo_url (log: $ODOO_LOG)..."
        "${ODOO_CMD[@]}" -c "$ODOO_CONF" &
        ODOO_PID=$!
    fi
    wait_http "$base/readyz" "$ENGINE_PID" "the engine" "$deadline"
    [ "$with_odoo" = 0 ] || wait_http "$odoo_url/web/health" "$ODOO_PID" "Odoo" "$deadline" "$ODOO_LOG"

    say ""
    say "The platform is up:"
    if [ "$with_odoo" = 1 ]; then
        say "  Odoo      $odoo_url/web   (user admin, password $ODOO_USER_PASSWORD: ODOO_ADMIN_USER_PASSWORD in .env)"
    fi
    say "  API docs  $base/docs"
    say "  Demo      $base/demo"
    if [ "$with_odoo" = 0 ]; then
        say "Odoo is not running: set ODOO_SRC to an Odoo 18 source tree (git clone -b 18.0 --depth 1 https://github.com/odoo/odoo) for the full platform, or use Docker."
    fi

    if [ "$DEMO" = 1 ]; then
        local key state_file="$state_dir/demo-engine.json"
        [ "$with_odoo" = 0 ] || state_file="$state_dir/demo-odoo.json"
        [ -f "$state_file" ] || say "Creating the Demo chatbot from docs/*.md$([ "$with_odoo" = 1 ] && printf ' in Odoo')..."
        if [ "$with_odoo" = 1 ]; then
            key="$("$python" "$ROOT/odoo_service/local/demo.py" odoo "$state_file" "$odoo_url" odoo admin "$ODOO_USER_PASSWORD")" || key=""
        else
            key="$("$python" "$ROOT/odoo_service/local/demo.py" engine "$state_file" "$base" "$(setting WEBHOOK_SECRET "")")" || key=""
        fi
        if [ -n "$key" ]; then
            say "  Demo chatbot ready: $base/demo?key=$key"
        else
            say "The demo could not be prepared (see the message above); the platform runs without it."
        fi
    fi
    say "Press Ctrl-C to stop."

    rc=0
    if [ -n "$ODOO_PID" ]; then
        wait -n "$ENGINE_PID" "$ODOO_PID" || rc=$?
        say "A service exited (code $rc); stopping the others."
        stop_local
    else
        wait "$ENGINE_PID" || rc=$?
        ENGINE_PID=""
        trap - INT TERM EXIT
    fi
    exit "$rc"
}

# --- main ---------------------------------------------------------------------------------------

main() {
    local mode=auto
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --local) mode=local ;;
        --docker) mode=docker ;;
        --no-demo) DEMO=0 ;;
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
