import base64
import secrets

import pytest
from pydantic import ValidationError

from app.config import DEV_WEBHOOK_SECRET, Environment, Settings, webhook_secret_bytes


def real_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def test_local_mode_accepts_the_development_secret_and_no_database_url():
    s = Settings(_env_file=None, environment=Environment.LOCAL)
    assert s.webhook_secret == DEV_WEBHOOK_SECRET
    assert s.embedded_database


@pytest.mark.parametrize(
    "secret", [DEV_WEBHOOK_SECRET, "whsec_change-me", "change-me", "whsec_" + base64.b64encode(b"short").decode()]
)
def test_production_refuses_placeholder_or_weak_secrets(secret):
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        Settings(_env_file=None, environment="production", webhook_secret=secret, database_url="postgresql://x/y")


def test_production_requires_a_database_url():
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, environment="production", webhook_secret=real_secret())


def test_production_accepts_a_real_secret():
    s = Settings(
        _env_file=None, environment="production", webhook_secret=real_secret(), database_url="postgresql://db/rag"
    )
    assert len(webhook_secret_bytes(s.webhook_secret) or b"") == 32


def test_values_come_from_the_environment_and_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9123\nTRUSTED_PROXIES=10.0.0.1, 10.0.0.2\n")
    monkeypatch.setenv("LLM_BACKEND", "openai")
    s = Settings(_env_file=env_file)
    assert s.port == 9123
    assert s.trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert s.llm_backend == "openai"


def test_invalid_values_are_rejected_with_the_field_named():
    with pytest.raises(ValidationError, match="port"):
        Settings(_env_file=None, port=70000)
