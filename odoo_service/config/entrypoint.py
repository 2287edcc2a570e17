#!/usr/bin/env python3
"""Render odoo.conf from its template and the environment, then run the image's entrypoint.

Odoo reads no secret from the environment by itself, and a config file holding secrets must not
be baked into an image: this renders `${VAR}` / `${VAR:-default}` at each start into $ODOO_RC
(mode 0600), hashes `admin_passwd`, and execs the official /entrypoint.sh with the same arguments.

When it starts the server, it also adds `--init=<addons>` for the addons of $ODOO_INIT_ADDONS
(default `chatbot_platform`) not yet installed in the database: the first start installs them, and
later starts do not re-run `--init`, which would reload the addon's data at every restart.

On the first start of an empty database with $ODOO_ADMIN_USER_PASSWORD set (./start.sh generates
it into .env), the install runs to completion first (`--stop-after-init`), then Odoo itself sets
that password on the `admin` user (`odoo shell`, so Odoo hashes it), and only then does the server
start: the stack never serves the default admin/admin. Later starts leave the password alone (it
is rotated in Odoo, see docs/deployment.md).
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping

TEMPLATE = os.environ.get("ODOO_CONF_TEMPLATE", "/etc/odoo/odoo.conf.template")
TARGET = os.environ.get("ODOO_RC", "/etc/odoo/odoo.conf")
OFFICIAL_ENTRYPOINT = "/entrypoint.sh"
DEFAULT_INIT_ADDONS = "chatbot_platform"
ADMIN_USER_PASSWORD = "ODOO_ADMIN_USER_PASSWORD"
PLACEHOLDER_SECRET = "change-me"
# Run by `odoo shell` (stdin), which rolls back unless told to commit.
SET_ADMIN_PASSWORD = (
    "import os\n"
    f'env.ref("base.user_admin").password = os.environ["{ADMIN_USER_PASSWORD}"]\n'
    "env.cr.commit()\n"
    'print("chatbot-odoo-entrypoint: admin password set")\n'
)
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


def starts_server(argv: list[str]) -> bool:
    """`odoo [options]` or `[options]`, as the official entrypoint sees it; not `odoo shell`, `tar`..."""
    if not argv:
        return False
    if argv[0].startswith("-"):
        return True
    return argv[0] in ("odoo", "--") and (len(argv) == 1 or argv[1].startswith("-"))


def _connect(rendered: str, wait_seconds: float):
    """A psycopg2 connection to the configured database; None when it cannot be had."""
    try:
        import psycopg2
    except ImportError:
        return None
    parser = configparser.RawConfigParser()
    parser.read_string(rendered)
    options = parser["options"]
    params = {
        "host": options.get("db_host", "db"),
        "port": options.get("db_port", "5432"),
        "user": options.get("db_user", "odoo"),
        "password": options.get("db_password", ""),
        "dbname": database_name(rendered),
        "connect_timeout": 5,
    }
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return psycopg2.connect(**params)
        except psycopg2.OperationalError:
            if time.monotonic() >= deadline:
                return None
            time.sleep(2)


def database_name(rendered: str) -> str:
    parser = configparser.RawConfigParser()
    parser.read_string(rendered)
    return parser["options"].get("db_name", "odoo").split(",")[0]


def installed_addons(rendered: str, names: list[str], wait_seconds: float = 30.0) -> set[str] | None:
    """Which of `names` the configured database has installed; None when that cannot be known."""
    conn = _connect(rendered, wait_seconds)
    if conn is None:
        return None
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT to_regclass('ir_module_module')")
            if cr.fetchone()[0] is None:  # empty database: Odoo initialises it on this start
                return set()
            cr.execute(
                "SELECT name FROM ir_module_module WHERE name = ANY(%s) AND state IN ('installed', 'to upgrade')",
                (names,),
            )
            return {row[0] for row in cr.fetchall()}
    finally:
        conn.close()


def database_is_empty(rendered: str, wait_seconds: float = 30.0) -> bool | None:
    """True when the configured database exists and Odoo has not initialised it yet; None when
    that cannot be known (database unreachable)."""
    conn = _connect(rendered, wait_seconds)
    if conn is None:
        return None
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT to_regclass('res_users') IS NULL")
            return bool(cr.fetchone()[0])
    finally:
        conn.close()


def server_arguments(
    argv: list[str],
    rendered: str,
    env: Mapping[str, str],
    lookup: Callable[[str, list[str]], set[str] | None] | None = None,
) -> list[str]:
    """argv, plus `--init=` for the wanted addons that are not installed yet."""
    lookup = lookup or installed_addons
    names = [n.strip() for n in env.get("ODOO_INIT_ADDONS", DEFAULT_INIT_ADDONS).split(",") if n.strip()]
    explicit = any(a in ("-i", "-u") or a.startswith(("--init", "--update")) for a in argv)
    if not names or explicit or not starts_server(argv):
        return argv
    installed = lookup(rendered, names)
    missing = names if installed is None else [n for n in names if n not in installed]
    return [*argv, f"--init={','.join(missing)}"] if missing else argv


def first_start(
    argv: list[str],
    rendered: str,
    env: Mapping[str, str],
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    empty: Callable[[str], bool | None] | None = None,
    installed: Callable[[str, list[str]], set[str] | None] | None = None,
) -> list[str]:
    """On an empty database: install (argv's --init) to completion, check that every addon asked
    for is installed, set the admin user's password, and return argv without --init for the
    server. Otherwise argv unchanged."""
    password = env.get(ADMIN_USER_PASSWORD, "")
    initialising = starts_server(argv) and any(a.startswith("--init=") for a in argv)
    if not password or not initialising:
        return argv
    is_empty = (empty or database_is_empty)(rendered)
    if is_empty is None:
        # Never let Odoo initialise the database with admin/admin: exit, Compose restarts us.
        sys.exit("chatbot-odoo-entrypoint: the database is unreachable; cannot tell whether this is the first start")
    if not is_empty:
        return argv
    if password == PLACEHOLDER_SECRET:
        sys.exit(f"chatbot-odoo-entrypoint: {ADMIN_USER_PASSWORD} is still `change-me`; put a strong password in .env")
    if "\n" in password or "\r" in password:
        sys.exit(f"chatbot-odoo-entrypoint: {ADMIN_USER_PASSWORD} must be a single line")
    print("chatbot-odoo-entrypoint: first start: installing, then setting the admin password", flush=True)
    done = run([OFFICIAL_ENTRYPOINT, *argv, "--stop-after-init"], check=False)
    if done.returncode != 0:
        sys.exit(f"chatbot-odoo-entrypoint: the first-start install failed (exit {done.returncode})")
    # Odoo exits 0 when it skips an addon it cannot install (e.g. a missing Python dependency):
    # serving without it would look like a working platform with no chatbot menu.
    wanted = [n for a in argv if a.startswith("--init=") for n in a.split("=", 1)[1].split(",") if n]
    present = (installed or installed_addons)(rendered, wanted)
    if present is None:
        sys.exit("chatbot-odoo-entrypoint: the database became unreachable after the first-start install")
    missing = sorted(set(wanted) - present)
    if missing:
        sys.exit(
            f"chatbot-odoo-entrypoint: the first-start install left {', '.join(missing)} not installed; "
            "Odoo's log above says why (a missing Python dependency?)"
        )
    done = run(
        [OFFICIAL_ENTRYPOINT, "odoo", "shell", "--no-http", "-d", database_name(rendered)],
        input=SET_ADMIN_PASSWORD,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"chatbot-odoo-entrypoint: setting the admin password failed (exit {done.returncode})")
    return [a for a in argv if not a.startswith("--init=")]


def main(argv: list[str]) -> None:
    with open(TEMPLATE, encoding="utf-8") as handle:
        template = handle.read()
    try:
        rendered = render(template, os.environ)
    except TemplateError as error:
        sys.exit(f"chatbot-odoo-entrypoint: {error}")
    write_private(TARGET, hash_admin_password(rendered))
    argv = server_arguments(argv, rendered, os.environ)
    argv = first_start(argv, rendered, os.environ)
    os.execv(OFFICIAL_ENTRYPOINT, [OFFICIAL_ENTRYPOINT, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
