"""Shared helpers of the deployment tests: repository paths, tools, parsed compose and .env files."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
START_SH = REPO / "start.sh"

# `NAME=value` (set) or `# NAME=value` (documented, unset) in .env.example.
ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
# ${NAME}, ${NAME:-x}, ${NAME:?x}... but not $${...}, which Compose leaves to the container's shell.
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def find_tool(name: str) -> str | None:
    """A console script of this virtualenv first (pip-installed linters), then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require_tool(name: str, install_hint: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({install_hint})")
    return path


def parse_env_example(path: Path = ENV_EXAMPLE) -> dict[str, tuple[bool, str]]:
    """{NAME: (is_set, value)} for every documented variable."""
    documented: dict[str, tuple[bool, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(line)
        if match:
            documented[match.group(2)] = (match.group(1) is None, match.group(3))
    return documented


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def env_example() -> dict[str, tuple[bool, str]]:
    return parse_env_example()


@pytest.fixture
def filled_env_file(tmp_path: Path) -> Path:
    """.env.example with every `change-me` replaced: what start.sh would write."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^WEBHOOK_SECRET=change-me$", "WEBHOOK_SECRET=whsec_" + "A" * 44, text)
    text = re.sub(r"(?m)^([A-Z_]+)=change-me$", r"\1=test-password-0123456789", text)
    path = tmp_path / "test.env"
    path.write_text(text, encoding="utf-8")
    return path
