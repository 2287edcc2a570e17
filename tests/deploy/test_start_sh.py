"""start.sh, run on a copy of the repository with a fake `docker` first on PATH.

The fake records its arguments and answers `info`, `compose version|up|ps`. Local mode is driven
through CHATBOT_INSTALL_CMD (a fake installer that writes a fake `$VENV/bin/python`, which serves
/readyz and records how it was started and stopped), so nothing is installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import ENV_EXAMPLE, START_SH, parse_env_file

FAKE_DOCKER = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
info) exit "${FAKE_DOCKER_INFO_RC:-0}" ;;
compose)
    case "$2" in
    version) echo "Docker Compose version v2.40.3" ;;
    up) exit "${FAKE_DOCKER_UP_RC:-0}" ;;
    ps)
        count_file="$FAKE_DOCKER_LOG.ps"
        count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
        echo "$count" > "$count_file"
        service="${!#}"
        if [ "$count" -le "${FAKE_DOCKER_STARTING_POLLS:-0}" ]; then health=starting; else health="${FAKE_DOCKER_HEALTH:-healthy}"; fi
        printf '{"Service":"%s","State":"%s","Health":"%s"}\n' "$service" "${FAKE_DOCKER_STATE:-running}" "$health"
        ;;
    esac
    ;;
esac
"""

FAKE_ENGINE = """#!{python}
# Stands in for `$VENV/bin/python -m app`: records its start, serves /readyz, records its stop.
import http.server, json, os, signal, sys
log = os.environ["FAKE_ENGINE_LOG"]
def record(entry):
    with open(log, "a") as handle:
        handle.write(json.dumps(entry) + "\\n")
record({{"argv": sys.argv[1:], "HOST": os.environ.get("HOST"), "PORT": os.environ.get("PORT"),
        "ENVIRONMENT": os.environ.get("ENVIRONMENT"), "DATABASE_URL": os.environ.get("DATABASE_URL"),
        "cwd": os.getcwd()}})
if os.environ.get("FAKE_ENGINE_EXIT"):
    sys.exit(int(os.environ["FAKE_ENGINE_EXIT"]))
def stop(signum, frame):
    record({{"stopped": signum}})
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""

FAKE_INSTALLER = """#!/usr/bin/env bash
echo "install $VENV" >> "$FAKE_INSTALL_LOG"
mkdir -p "$VENV/bin"
cp "$FAKE_ENGINE_SOURCE" "$VENV/bin/python"
chmod +x "$VENV/bin/python"
exit "${{FAKE_INSTALL_RC:-0}}"
"""

SECRET_NAMES = ("POSTGRES_PASSWORD", "ODOO_DB_PASSWORD", "RAG_DB_PASSWORD", "ODOO_ADMIN_PASSWORD")


def _write_executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sandbox:
    """A copy of start.sh + .env.example, a fake docker, fake installer and logs."""

    def __init__(self, root: Path) -> None:
        self.repo = root / "repo"
        self.repo.mkdir(parents=True)
        shutil.copy2(START_SH, self.repo / "start.sh")
        shutil.copy2(ENV_EXAMPLE, self.repo / ".env.example")
        self.bin = root / "bin"
        self.bin.mkdir()
        self.docker_log = root / "docker.log"
        self.install_log = root / "install.log"
        self.engine_log = root / "engine.log"
        _write_executable(self.bin / "docker", FAKE_DOCKER)
        engine = root / "fake-engine"
        engine.write_text(FAKE_ENGINE.format(python=sys.executable), encoding="utf-8")
        self.installer = _write_executable(root / "fake-install.sh", FAKE_INSTALLER.format())
        self.env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root),
            "FAKE_DOCKER_LOG": str(self.docker_log),
            "FAKE_INSTALL_LOG": str(self.install_log),
            "FAKE_ENGINE_LOG": str(self.engine_log),
            "FAKE_ENGINE_SOURCE": str(engine),
            "CHATBOT_INSTALL_CMD": str(self.installer),
            "VENV": str(root / "venv"),
            "START_TIMEOUT": "30",
        }

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.repo / "start.sh"), *args],
            cwd=self.repo,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def docker_calls(self) -> list[str]:
        return self.docker_log.read_text().splitlines() if self.docker_log.exists() else []

    def engine_records(self) -> list[dict[str, object]]:
        if not self.engine_log.exists():
            return []
        return [json.loads(line) for line in self.engine_log.read_text().splitlines()]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def _assert_fresh_secrets(env_file: Path) -> dict[str, str]:
    values = parse_env_file(env_file)
    assert "change-me" not in "".join(f"{k}={v}" for k, v in values.items())
    webhook = values["WEBHOOK_SECRET"]
    assert webhook.startswith("whsec_")
    assert len(base64.b64decode(webhook.removeprefix("whsec_"), validate=True)) == 32
    for name in SECRET_NAMES:
        assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", values[name]), name
    assert len({values[name] for name in SECRET_NAMES}) == len(SECRET_NAMES)
    assert env_file.stat().st_mode & 0o077 == 0, ".env must be private"
    return values


# --- general ------------------------------------------------------------------------------------


def test_help(sandbox: Sandbox) -> None:
    result = sandbox.run("--help")
    assert result.returncode == 0
    assert "--local" in result.stdout and "CHATBOT_INSTALL_CMD" in result.stdout
    assert sandbox.docker_calls() == []
    assert not (sandbox.repo / ".env").exists()


def test_unknown_option(sandbox: Sandbox) -> None:
    result = sandbox.run("--frobnicate")
    assert result.returncode != 0
    assert "unknown option" in result.stderr


def test_docker_is_only_called_through_path() -> None:
    text = START_SH.read_text(encoding="utf-8")
    assert not re.search(r"/(usr/)?(local/)?bin/docker\b", text)
    assert "DOCKER=" not in text


# --- with Docker ----------------------------------------------------------------------------------


def test_docker_mode_builds_starts_waits_and_prints_urls(sandbox: Sandbox) -> None:
    result = sandbox.run()
    assert result.returncode == 0, result.stderr
    calls = sandbox.docker_calls()
    assert calls[0] == "info"
    assert "compose up -d --build" in calls
    assert "compose ps --all --format json api" in calls
    assert "compose ps --all --format json odoo" in calls
    assert calls.index("compose up -d --build") < calls.index("compose ps --all --format json api")
    assert "http://localhost:8069" in result.stdout
    assert "http://localhost:8000/docs" in result.stdout
    assert "http://localhost:8000/demo" in result.stdout
    assert not sandbox.install_log.exists()
    _assert_fresh_secrets(sandbox.repo / ".env")


def test_docker_mode_prints_the_generated_admin_password_once(sandbox: Sandbox) -> None:
    first = sandbox.run()
    assert first.returncode == 0, first.stderr
    password = parse_env_file(sandbox.repo / ".env")["ODOO_ADMIN_USER_PASSWORD"]
    assert len(password) >= 24 and password != "change-me"
    assert f"user admin, password {password}" in first.stdout
    second = sandbox.run()
    assert second.returncode == 0, second.stderr
    assert password not in second.stdout, "shown on the first start only"
    assert "ODOO_ADMIN_USER_PASSWORD in .env" in second.stdout


def test_docker_mode_waits_until_healthy(sandbox: Sandbox) -> None:
    result = sandbox.run(FAKE_DOCKER_STARTING_POLLS="3")
    assert result.returncode == 0, result.stderr
    polls = [c for c in sandbox.docker_calls() if c.startswith("compose ps")]
    assert len(polls) >= 4


def test_docker_mode_gives_up_after_the_timeout(sandbox: Sandbox) -> None:
    started = time.monotonic()
    result = sandbox.run(FAKE_DOCKER_HEALTH="starting", START_TIMEOUT="2")
    assert result.returncode != 0
    assert "not healthy after 2s" in result.stderr
    assert time.monotonic() - started < 30


def test_docker_mode_reports_an_exited_service(sandbox: Sandbox) -> None:
    result = sandbox.run(FAKE_DOCKER_STATE="exited", FAKE_DOCKER_HEALTH="")
    assert result.returncode != 0
    assert "exited" in result.stderr and "docker compose logs" in result.stderr


def test_docker_mode_stops_when_compose_up_fails(sandbox: Sandbox) -> None:
    result = sandbox.run(FAKE_DOCKER_UP_RC="1")
    assert result.returncode != 0
    assert not any(c.startswith("compose ps") for c in sandbox.docker_calls())


def test_docker_flag_without_a_daemon_fails_clearly(sandbox: Sandbox) -> None:
    result = sandbox.run("--docker", FAKE_DOCKER_INFO_RC="1")
    assert result.returncode != 0
    assert "no Docker engine answers" in result.stderr
    assert not sandbox.install_log.exists()


def test_local_flag_skips_docker_even_when_it_answers(sandbox: Sandbox) -> None:
    result = sandbox.run("--local", PORT=str(_free_port()), FAKE_ENGINE_EXIT="3")
    assert sandbox.docker_calls() == []
    assert sandbox.install_log.exists()
    assert result.returncode != 0


# --- .env -----------------------------------------------------------------------------------------


def test_env_secrets_differ_between_two_copies(tmp_path: Path) -> None:
    first, second = Sandbox(tmp_path / "a"), Sandbox(tmp_path / "b")
    for box in (first, second):
        assert box.run().returncode == 0
    a = _assert_fresh_secrets(first.repo / ".env")
    b = _assert_fresh_secrets(second.repo / ".env")
    for name in (*SECRET_NAMES, "WEBHOOK_SECRET"):
        assert a[name] != b[name], name
    # Everything that is not a secret is copied as is.
    example = [line for line in ENV_EXAMPLE.read_text().splitlines() if not line.endswith("=change-me")]
    generated = (first.repo / ".env").read_text().splitlines()
    assert [line for line in generated if line in example] == example


def test_existing_env_is_never_overwritten(sandbox: Sandbox) -> None:
    env_file = sandbox.repo / ".env"
    env_file.write_text("WEBHOOK_SECRET=mine\n")
    assert sandbox.run().returncode == 0
    assert env_file.read_text() == "WEBHOOK_SECRET=mine\n"
    first = sandbox.run()
    assert first.returncode == 0 and "never overwritten" in first.stdout
    assert env_file.read_text() == "WEBHOOK_SECRET=mine\n"


def test_env_is_generated_without_python(sandbox: Sandbox, tmp_path: Path) -> None:
    path_dir = _path_without(tmp_path / "nopython", exclude=("python", "docker"))
    _write_executable(path_dir / "docker", FAKE_DOCKER)
    result = sandbox.run(PATH=str(path_dir))
    assert result.returncode == 0, result.stderr
    _assert_fresh_secrets(sandbox.repo / ".env")


# --- without Docker -------------------------------------------------------------------------------


def _path_without(directory: Path, exclude: tuple[str, ...]) -> Path:
    """A PATH directory with every command of the real PATH except those starting with `exclude`."""
    directory.mkdir()
    for entry in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        folder = Path(entry)
        if not folder.is_dir() or "venv" in entry or "pyenv" in entry:
            continue
        for tool in folder.iterdir():
            if tool.name.startswith(exclude) or (directory / tool.name).exists():
                continue
            if tool.is_file() and os.access(tool, os.X_OK):
                (directory / tool.name).symlink_to(tool.resolve())
    return directory


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_without_docker_a_busy_port_is_reported(sandbox: Sandbox, busy_port: int) -> None:
    result = sandbox.run(FAKE_DOCKER_INFO_RC="1", PORT=str(busy_port))
    assert result.returncode != 0
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert "local mode" in result.stdout
    assert not sandbox.install_log.exists()


def test_without_python_the_message_says_so(sandbox: Sandbox, tmp_path: Path) -> None:
    path_dir = _path_without(tmp_path / "nopython", exclude=("python", "docker"))
    result = sandbox.run(PATH=str(path_dir))
    assert result.returncode != 0
    assert "python3 was not found" in result.stderr
    assert "3.11" in result.stderr
    assert not sandbox.install_log.exists()


def test_without_docker_an_install_failure_is_reported(sandbox: Sandbox) -> None:
    result = sandbox.run("--local", PORT=str(_free_port()), FAKE_INSTALL_RC="7")
    assert result.returncode != 0
    assert "installing the engine failed (exit 7)" in result.stderr
    assert sandbox.engine_records() == []


def test_without_docker_an_engine_that_dies_is_reported(sandbox: Sandbox) -> None:
    result = sandbox.run("--local", PORT=str(_free_port()), FAKE_ENGINE_EXIT="4")
    assert result.returncode != 0
    assert "the engine exited (code 4)" in result.stderr


def _default_signals() -> None:
    # As in a terminal: a suite started in the background of a non-interactive shell inherits
    # SIGINT/SIGQUIT ignored, and bash can neither trap nor reset signals ignored at its start.
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _start_local(sandbox: Sandbox, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", str(sandbox.repo / "start.sh")],
        cwd=sandbox.repo,
        env={**sandbox.env, "PORT": str(port), "FAKE_DOCKER_INFO_RC": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_signals,
    )


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"{marker!r} not printed; got {''.join(seen)!r}, stderr {process.stderr.read()!r}")  # type: ignore[union-attr]


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_without_docker_runs_the_engine_and_stops_it(sandbox: Sandbox, signum: int, exit_code: int) -> None:
    port = _free_port()
    process = _start_local(sandbox, port)
    try:
        output = _read_until(process, "Press Ctrl-C")
        assert f"http://127.0.0.1:{port}/docs" in output
        assert f"http://127.0.0.1:{port}/demo" in output
        assert sandbox.install_log.read_text().strip() == f"install {sandbox.env['VENV']}"
        process.send_signal(signum)
        assert process.wait(timeout=30) == exit_code
    finally:
        if process.poll() is None:
            process.kill()
    started, stopped = sandbox.engine_records()
    assert started["argv"] == ["-m", "app"]
    assert started["HOST"] == "127.0.0.1"
    assert started["PORT"] == str(port)
    assert started["ENVIRONMENT"] == "local"
    assert started["cwd"] == str(sandbox.repo)
    assert stopped == {"stopped": signal.SIGTERM}
    _assert_fresh_secrets(sandbox.repo / ".env")
    # The port is free again: nothing was left running (TIME_WAIT allowed, as for uvicorn).
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
