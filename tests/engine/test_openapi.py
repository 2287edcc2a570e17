"""The public OpenAPI document: one tag per audience, no internal route, an example for every
request and response body, and the error bodies the engine really sends."""

from __future__ import annotations

from typing import Any

import pytest

from app.main import OPENAPI_TAGS, create_app
from tests.conftest import make_settings

ERROR_SCHEMAS = {"#/components/schemas/ErrorBody", "#/components/schemas/OpenAIError"}


@pytest.fixture(scope="module")
def schema(embedder) -> dict[str, Any]:
    return create_app(make_settings(), embedder=embedder).openapi()


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def has_example(media: dict[str, Any], schema: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    ref = media.get("schema", {}).get("$ref")
    if ref is None:
        return False
    return bool(schema["components"]["schemas"][ref.rsplit("/", 1)[1]].get("examples"))


def test_every_operation_has_one_audience_tag_and_internal_routes_are_absent(schema):
    audiences = {tag["name"] for tag in OPENAPI_TAGS}
    assert {tag["name"] for tag in schema["tags"]} == audiences
    seen = set()
    for path, method, operation in operations(schema):
        assert not path.startswith("/internal") and path != "/mcp", path
        assert len(operation["tags"]) == 1 and operation["tags"][0] in audiences, (method, path)
        seen.add(operation["tags"][0])
    assert seen == audiences
    assert {"/v1/chat", "/v1/search", "/v1/chat/completions", "/v1/models"} <= set(schema["paths"])


def test_every_request_and_success_body_has_an_example(schema):
    for path, method, operation in operations(schema):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            assert has_example(media, schema), ("request", method, path)
        success = operation["responses"]["200"]["content"]
        assert success and all(has_example(m, schema) for m in success.values()), ("response", method, path)


def test_errors_are_documented_with_the_bodies_the_engine_sends(schema):
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's, never sent
    for path, method, operation in operations(schema):
        if not path.startswith("/v1/"):
            continue
        errors = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
        assert {"401", "429", "503"} <= set(errors), (method, path)
        for status, response in errors.items():
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref in ERROR_SCHEMAS, (method, path, status)
        expected = "OpenAIError" if path.startswith(("/v1/chat/completions", "/v1/models")) else "ErrorBody"
        assert {r["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1] for r in errors.values()} == {
            expected
        }
