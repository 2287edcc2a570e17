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
