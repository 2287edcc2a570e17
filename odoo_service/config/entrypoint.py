#!/usr/bin/env python3
"""Render odoo.conf from its template and the environment, then run the image's entrypoint.

Odoo reads no secret from the environment by itself, and a config file holding secrets must not
be baked into an image: this renders `${VAR}` / `${VAR:-default}` at each start into $ODOO_RC
(mode 0600), hashes `admin_passwd`, and execs the official /entrypoint.sh with the same arguments.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

TEMPLATE = os.environ.get("ODOO_CONF_TEMPLATE", "/etc/odoo/odoo.conf.template")
TARGET = os.environ.get("ODOO_RC", "/etc/odoo/odoo.conf")
OFFICIAL_ENTRYPOINT = "/entrypoint.sh"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class TemplateError(ValueError):
    pass


def render(template: str, env: Mapping[str, str]) -> str:
    """Substitute placeholders outside comment lines; a missing required variable or a multi-line
    value is an error."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name, "")
        if value == "":
            if default is None:
                raise TemplateError(f"{name} is not set (required by odoo.conf)")
            value = default
        if "\n" in value or "\r" in value:
            raise TemplateError(f"{name} must be a single line")
        return value

    lines = template.splitlines(keepends=True)
    return "".join(
        line if line.lstrip().startswith((";", "#")) else PLACEHOLDER.sub(substitute, line) for line in lines
    )


def hash_admin_password(rendered: str) -> str:
    """Store admin_passwd as Odoo's own PBKDF2-SHA512 hash when passlib is available."""
    try:
        from passlib.context import CryptContext
    except ImportError:  # outside the Odoo image (tests): keep the value
        return rendered
    context = CryptContext(["pbkdf2_sha512"])
    lines = []
    for line in rendered.splitlines(keepends=True):
        key, sep, value = line.partition("=")
        value = value.strip()
        if sep and key.strip() == "admin_passwd" and value and not value.startswith("$pbkdf2"):
            line = f"admin_passwd = {context.hash(value)}\n"
        lines.append(line)
    return "".join(lines)


def write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def main(argv: list[str]) -> None:
    with open(TEMPLATE, encoding="utf-8") as handle:
        template = handle.read()
    try:
        rendered = render(template, os.environ)
    except TemplateError as error:
        sys.exit(f"chatbot-odoo-entrypoint: {error}")
    write_private(TARGET, hash_admin_password(rendered))
    os.execv(OFFICIAL_ENTRYPOINT, [OFFICIAL_ENTRYPOINT, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
