""".env.example documents every variable Compose, the engine and Odoo read, and its defaults agree
with the engine's Settings and with docker-compose.yml."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

import pytest

from app.config import Settings
from tests.deploy.conftest import COMPOSE_FILE, COMPOSE_VAR, ENV_EXAMPLE, ENV_LINE

SECRET_NAMES = {"WEBHOOK_SECRET", "POSTGRES_PASSWORD", "ODOO_DB_PASSWORD", "RAG_DB_PASSWORD", "ODOO_ADMIN_PASSWORD"}
ODOO_NAMES = {"ENGINE_URL", "ENGINE_PUBLIC_URL", "WEBHOOK_SECRET"}
# Documented variables that no engine setting reads, and who reads them instead.
NOT_ENGINE_SETTINGS = {
    # docker-compose.yml interpolation only
    "POSTGRES_PASSWORD": "compose",
    "RAG_DB_PASSWORD": "compose (inside DATABASE_URL)",
    "BIND_ADDRESS": "compose",
    "ODOO_HOST_PORT": "compose",
    "ENGINE_HOST_PORT": "compose",
    "IMAGE_TAG": "compose",
    "POSTGRES_MAX_CONNECTIONS": "compose",
    "OLLAMA_VERSION": "compose",
    "OLLAMA_SERVICE": "compose (inside OLLAMA_URL)",
    "OLLAMA_GPU_COUNT": "compose",
    "OLLAMA_KEEP_ALIVE": "compose (the ollama service)",
    "WORKER_STOP_GRACE_PERIOD": "compose",
    "COMPOSE_PROFILES": "compose",
    # the Odoo container (odoo_service/config/entrypoint.py) and the addon
    "ODOO_DB_PASSWORD": "odoo",
    "ODOO_ADMIN_PASSWORD": "odoo",
    "ODOO_ADMIN_USER_PASSWORD": "odoo",
    "ODOO_WORKERS": "odoo",
    "ODOO_DB_MAXCONN": "odoo",
    "ODOO_INIT_ADDONS": "odoo",
    "ODOO_PROXY_MODE": "odoo",
    "ENGINE_URL": "odoo (the addon's outbox)",
    "ENGINE_PUBLIC_URL": "odoo (embed snippet); compose passes it to the engine as PUBLIC_BASE_URL",
    # read by libraries inside the engine image, not by Settings
    "HF_HUB_OFFLINE": "huggingface_hub",
    "TRANSFORMERS_OFFLINE": "transformers",
}
README = COMPOSE_FILE.parent / "README.md"
README_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)
COMPOSE_DEFAULT = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*):-(.*)\}$")


def _settings_value(field: str, raw: str) -> Any:
    """What the engine makes of `raw` for `field`, parsed as from the environment."""
    return getattr(Settings(_env_file=None, **{field: raw}), field)  # type: ignore[call-arg]


def _settings_default(field: str) -> Any:
    return Settings.model_fields[field].get_default(call_default_factory=True)


def test_every_compose_variable_is_documented(env_example: dict[str, tuple[bool, str]]) -> None:
    used = set(COMPOSE_VAR.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used, "no ${VAR} found in docker-compose.yml"
    assert sorted(used - set(env_example)) == []


def test_every_engine_setting_is_documented(env_example: dict[str, tuple[bool, str]]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(fields - set(env_example)) == []


def test_every_engine_setting_is_in_the_readme() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(fields - set(README_ROW.findall(README.read_text(encoding="utf-8")))) == []


def test_every_documented_variable_is_read_by_a_setting_or_named_as_read_elsewhere(
    env_example: dict[str, tuple[bool, str]], compose: dict[str, Any]
) -> None:
    """The other direction: a variable the docs promise but nothing reads is a silent no-op
    (Settings ignores unknown variables), as WEBHOOK_TOLERANCE_SECONDS was."""
    fields = {name.upper() for name in Settings.model_fields}
    documented = {
        ".env.example": set(env_example),
        "README.md": set(README_ROW.findall(README.read_text(encoding="utf-8"))),
        "docker-compose.yml (engine environment)": set(compose["services"]["api"]["environment"]),
    }
    for where, names in documented.items():
        assert sorted(names - fields - set(NOT_ENGINE_SETTINGS)) == [], f"documented in {where}, read by nothing"
    assert sorted(set(NOT_ENGINE_SETTINGS) & fields) == [], "listed as read elsewhere but it is an engine setting"


def test_odoo_variables_are_documented(env_example: dict[str, tuple[bool, str]]) -> None:
    assert sorted(ODOO_NAMES - set(env_example)) == []


def test_each_variable_is_documented_once() -> None:
    """One block per variable: a second `NAME=` (set or commented) would shadow or contradict the first."""
    names = [m.group(2) for m in map(ENV_LINE.match, ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()) if m]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_each_variable_has_one_comment_line_above_it() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not ENV_LINE.match(line):
            continue
        above = lines[index - 1] if index else ""
        assert above.startswith("# ") and not ENV_LINE.match(above), f"no comment line above {line!r}"


def test_secrets_are_placeholders(env_example: dict[str, tuple[bool, str]]) -> None:
    for name in SECRET_NAMES:
        is_set, value = env_example[name]
        assert is_set and value == "change-me", name
    for name, (is_set, value) in env_example.items():
        if is_set and any(word in name for word in ("PASSWORD", "SECRET", "API_KEY")):
            assert value in {"change-me", ""}, f"{name} must not ship a value"


def test_values_set_in_env_example_are_the_engine_defaults(env_example: dict[str, tuple[bool, str]]) -> None:
    for field in Settings.model_fields:
        is_set, value = env_example.get(field.upper(), (False, ""))  # undocumented: see the test above
        if not is_set or field.upper() in SECRET_NAMES:
            continue
        assert _settings_value(field, value) == _settings_default(field), field.upper()


def test_compose_defaults_are_the_engine_defaults(compose: dict[str, Any]) -> None:
    env = compose["services"]["api"]["environment"]
    checked = 0
    for name, value in env.items():
        match = COMPOSE_DEFAULT.match(str(value))
        if not match or match.group(1) != name or name.lower() not in Settings.model_fields:
            continue
        assert _settings_value(name.lower(), match.group(2)) == _settings_default(name.lower()), name
        checked += 1
    assert checked >= 30


def test_generated_style_secret_passes_the_engine_validation() -> None:
    environment = "production"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment=environment, webhook_secret=secret, database_url="postgresql://rag:x@db/rag"
    )
    assert settings.webhook_secret == secret
    with pytest.raises(ValueError):
        Settings(  # type: ignore[call-arg]
            _env_file=None, environment=environment, webhook_secret="change-me", database_url="postgresql://x@db/rag"
        )


def test_no_variable_is_listed_twice() -> None:
    names = [m.group(2) for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines() if (m := ENV_LINE.match(line))]
    assert sorted({n for n in names if names.count(n) > 1}) == []
