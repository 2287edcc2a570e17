"""odoo_service/install_local.sh: a missing or wrong ODOO_SRC, or an unusable Python, is one clear
line and exit 1, before anything is installed (`--check` is what start.sh and tests/run.sh ask)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.server import REPO

SCRIPT = REPO / "odoo_service" / "install_local.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ODOO_SRC", "PYTHON", "ODOO_VENV")}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def fake_tree(root: Path, version: str) -> Path:
    (root / "odoo").mkdir(parents=True)
    (root / "setup").mkdir()
    major, minor = version.split(".")
    (root / "odoo" / "release.py").write_text(f"version_info = ({major}, {minor}, 0, FINAL, 0, '')\n")
    (root / "setup" / "odoo").write_text("#!/usr/bin/env python3\n")
    (root / "requirements.txt").write_text("")
    return root


@pytest.mark.parametrize(
    ("src", "message"),
    [
        (None, "set ODOO_SRC to an Odoo 18 source tree"),
        ("/nonexistent/odoo-18", "ODOO_SRC=/nonexistent/odoo-18 is not a directory"),
        ("EMPTY", "is not an Odoo source tree (no odoo/release.py, setup/odoo or requirements.txt)"),
        ("ODOO17", "is Odoo 17.0, not 18.0"),
    ],
)
def test_a_wrong_tree_is_one_line(tmp_path: Path, src: str | None, message: str) -> None:
    env = {}
    if src == "EMPTY":
        env["ODOO_SRC"] = str(tmp_path)
    elif src == "ODOO17":
        env["ODOO_SRC"] = str(fake_tree(tmp_path / "odoo-17", "17.0"))
    elif src:
        env["ODOO_SRC"] = src
    for args in ((), ("--check",)):
        result = run(*args, ODOO_VENV=str(tmp_path / "venv"), **env)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("install_local: ") and message in lines[0], result.stderr
        assert not (tmp_path / "venv").exists()


def test_an_unusable_python_is_one_line(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "odoo-18", "18.0")
    result = run("--check", ODOO_SRC=str(tree), PYTHON="/bin/false")
    assert result.returncode == 1
    assert result.stderr.strip() == "install_local: Odoo 18 needs Python 3.10 to 3.12 (set PYTHON=/path/to/python3.11)"


def test_check_accepts_an_odoo_18_tree_and_installs_nothing(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "odoo-18", "18.0")
    result = run("--check", ODOO_SRC=str(tree), ODOO_VENV=str(tmp_path / "venv"))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "venv").exists()


def test_an_unknown_option_is_refused(tmp_path: Path) -> None:
    result = run("--frobnicate", ODOO_SRC=str(fake_tree(tmp_path / "odoo-18", "18.0")))
    assert result.returncode == 1 and "unknown option --frobnicate" in result.stderr
