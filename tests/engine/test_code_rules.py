"""Rules of the engine's code, checked on its source: data flows down, and libraries are used
through their public API (see docs/architecture.md, "Wiring and layers")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "fastapi_service" / "app"

# Domain packages (and top-level modules) from the bottom up: a module may import its own package
# and lower layers only. The wiring modules below sit above every layer.
LAYERS: list[set[str]] = [
    {"config", "errors", "wire", "webhooks", "languages"},
    {"observability", "db", "body_limit"},
    {"logging_setup", "embedding", "extraction", "keys", "ratelimit", "internal", "public"},
    {"links", "retrieval", "handoff"},
    {"generation"},
    {"ingestion", "chat"},
    {
        "chatbots",
        "sources",
        "analytics",
        "conversations",
        "search",
        "widget",
        "health",
        "apidocs",
        "openai_compat",
        "mcp_server",
    },
]
# The composition root and what reads the typed state: routers, named dependencies, middleware.
WIRING = {"main", "state", "deps", "worker", "__main__", "internal.auth", "public.cors"}


def module_name(path: Path, app: Path) -> str:
    rel = path.relative_to(app).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def is_wiring(module: str) -> bool:
    return module in WIRING or module.rsplit(".", 1)[-1] in ("router", "deps")


def rank(module: str) -> int:
    package = module.split(".", 1)[0]
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"app.{package} is in no layer of this test: add it to LAYERS")


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
            base = node.module.removeprefix("app.")
            if node.module.count(".") == 1:  # `from app.x import y`: y may be a module of package x
                found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, base))
        elif isinstance(node, ast.ImportFrom) and node.module == "app":
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name.removeprefix("app.")) for a in node.names if a.name.startswith("app."))
    return found


def upward_imports(app: Path) -> list[str]:
    problems = []
    for path in sorted(app.rglob("*.py")):
        module = module_name(path, app)
        if is_wiring(module):
            continue
        for line, target in imports_of(path):
            wiring = next((w for w in WIRING if target == w or target.startswith(w + ".")), None)
            if wiring is not None or is_wiring(target):
                problems.append(f"app.{module}:{line} imports wiring module app.{wiring or target}")
            elif target.split(".", 1)[0] != module.split(".", 1)[0] and rank(target) >= rank(module):
                problems.append(f"app.{module}:{line} imports app.{target}, which is not below it")
    return problems


# Underscore names that are documented public API: namedtuple methods, os._exit.
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_exit"}
TYPE_IGNORE = re.compile(r"# type: ignore\[[a-z-]+(, ?[a-z-]+)*\]  # \w")


def private_library_attributes(app: Path) -> list[str]:
    """`x._name` where x is not self/cls: a private attribute of some other object (a library's)."""
    problems = []
    for path in sorted(app.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            if node.attr in PUBLIC_UNDERSCORE:
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            problems.append(f"{path.relative_to(app)}:{node.lineno} .{node.attr}")
    return problems


def unexplained_type_ignores(app: Path) -> list[str]:
    problems = []
    for path in sorted(app.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "# type: ignore" in line and not TYPE_IGNORE.search(line):
                problems.append(f"{path.relative_to(app)}:{number}: {line.strip()}")
    return problems


def test_no_module_imports_one_above_it():
    assert upward_imports(APP) == []


def test_no_private_attribute_of_a_library_is_touched():
    assert private_library_attributes(APP) == []


def test_every_type_ignore_names_its_code_and_reason():
    """`# type: ignore[code]  # why`: never a bare ignore, never one without its reason."""
    assert unexplained_type_ignores(APP) == []


def test_no_service_is_looked_up_by_a_string_key():
    offenders = [
        f"{p.relative_to(APP)}"
        for p in APP.rglob("*.py")
        if "extras[" in p.read_text(encoding="utf-8") or "extras.get(" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from app.chat.service import ChatService\n", "imports app.chat.service, which is not below it"),
        ("from app.deps import DbDep\n", "imports wiring module app.deps"),
        ("from app import state\n", "imports wiring module app.state"),
    ],
)
def test_the_layer_check_sees_an_upward_import(tmp_path, source, expected):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "service.py").write_text(source)
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "service.py").write_text("")
    assert [p.split(" ", 1)[1] for p in upward_imports(tmp_path)] == [expected]


def test_the_private_attribute_check_sees_a_library_private(tmp_path):
    (tmp_path / "m.py").write_text("def f(t):\n    t._pool = 1\n    return self._own\n")
    assert private_library_attributes(tmp_path) == ["m.py:2 ._pool"]
