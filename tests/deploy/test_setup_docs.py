"""The setup guides are written for a user's own machine and Odoo checkout (#17): no path of ours,
and every documented `python …/setup/odoo` command names the checkout in PYTHONPATH."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import REPO

GUIDES = ("README.md", "docs/odoo_addon.md", "docs/deployment.md")
# paths of the machines this repository is developed on, never a reader's
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/home/\w|/root/|/Users/\w|\.\./shared/)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def commands(text: str) -> list[str]:
    """Shell commands of the fenced blocks, with continued lines joined."""
    out: list[str] = []
    for block in FENCE.findall(text):
        out.extend(line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip())
    return out


@pytest.mark.parametrize("guide", GUIDES)
def test_guides_name_no_path_of_our_machines(guide: str) -> None:
    text = (REPO / guide).read_text(encoding="utf-8")
    found = [line for line in text.splitlines() if MACHINE_PATH.search(line)]
    assert found == []


@pytest.mark.parametrize("guide", GUIDES)
def test_running_setup_odoo_by_hand_sets_pythonpath(guide: str) -> None:
    by_hand = [
        c for c in commands((REPO / guide).read_text(encoding="utf-8")) if re.search(r"python\S* \S*setup/odoo", c)
    ]
    assert all("PYTHONPATH=" in c for c in by_hand), by_hand


def test_the_addon_guide_documents_the_by_hand_command() -> None:
    by_hand = [c for c in commands((REPO / "docs/odoo_addon.md").read_text(encoding="utf-8")) if "setup/odoo" in c]
    assert by_hand, "docs/odoo_addon.md shows no command that runs Odoo from a checkout"
