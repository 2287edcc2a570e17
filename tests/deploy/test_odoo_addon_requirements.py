"""The addon's Python dependencies are declared once and reach both ways of running Odoo.

`__manifest__.py` names them (Odoo refuses to install the addon without them); the addon's
`requirements.txt` pins them; the Odoo image installs that file and `.venv-odoo` includes it.
A dependency added to the manifest alone installs in one mode and breaks the other.
"""

from __future__ import annotations

import ast
import re

from tests.deploy.conftest import REPO

ADDON = REPO / "odoo_service/custom_addons/chatbot_platform"
ODOO_SHIPS = {"requests"}  # in Odoo 18's own requirements.txt


def requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_every_manifest_dependency_is_pinned_in_the_addon_requirements() -> None:
    manifest = ast.literal_eval((ADDON / "__manifest__.py").read_text())
    declared = {name.lower().replace("_", "-") for name in manifest["external_dependencies"]["python"]}
    pinned = requirement_names((ADDON / "requirements.txt").read_text())
    assert declared - ODOO_SHIPS <= pinned, f"pin {sorted(declared - ODOO_SHIPS - pinned)} in {ADDON}/requirements.txt"
    assert all(
        "==" in line for line in (ADDON / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    )


def test_the_image_and_the_local_venv_install_the_addon_requirements() -> None:
    dockerfile = (REPO / "odoo_service/Dockerfile").read_text()
    assert (
        "/opt/chatbot-addons/*/requirements.txt" in dockerfile
        and "COPY --chown=odoo:odoo custom_addons /opt/chatbot-addons" in dockerfile
    )
    local = (REPO / "odoo_service/requirements-local.txt").read_text()
    assert "-r custom_addons/chatbot_platform/requirements.txt" in local.splitlines()
