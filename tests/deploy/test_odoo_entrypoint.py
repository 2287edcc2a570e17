"""odoo_service/config/entrypoint.py renders odoo.conf from the environment and hands over."""

from __future__ import annotations

import configparser
import importlib.util
import stat
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.conftest import REPO

TEMPLATE = REPO / "odoo_service/config/odoo.conf"


def _load_entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("odoo_entrypoint", REPO / "odoo_service/config/entrypoint.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def entrypoint() -> ModuleType:
    return _load_entrypoint()


ENV = {"ODOO_DB_PASSWORD": "db-pass", "ODOO_ADMIN_PASSWORD": "admin-pass"}


def test_template_renders_to_a_valid_config(entrypoint: ModuleType) -> None:
    rendered = entrypoint.render(TEMPLATE.read_text(), ENV)
    assert "${" not in "".join(line for line in rendered.splitlines() if not line.startswith(";"))
    parser = configparser.RawConfigParser()
    parser.read_string(rendered)
    options = parser["options"]
    assert options["db_host"] == "db"
    assert options["db_user"] == "odoo"
    assert options["db_password"] == "db-pass"
    assert options["db_name"] == "odoo"
    assert options["list_db"] == "False"
    assert options["workers"] == "0"
    assert options["addons_path"].split(",")[0] == "/opt/chatbot-addons"


def test_template_holds_no_secret() -> None:
    parser = configparser.RawConfigParser()
    parser.read_string(TEMPLATE.read_text())
    for key in ("db_password", "admin_passwd"):
        assert parser["options"][key].startswith("${"), key


def test_defaults_and_overrides(entrypoint: ModuleType) -> None:
    assert entrypoint.render("w = ${ODOO_WORKERS:-0}", {}) == "w = 0"
    assert entrypoint.render("w = ${ODOO_WORKERS:-0}", {"ODOO_WORKERS": "4"}) == "w = 4"
    assert entrypoint.render("w = ${ODOO_WORKERS:-0}", {"ODOO_WORKERS": ""}) == "w = 0"


def test_missing_required_variable_is_an_error(entrypoint: ModuleType) -> None:
    with pytest.raises(entrypoint.TemplateError, match="ODOO_DB_PASSWORD"):
        entrypoint.render(TEMPLATE.read_text(), {"ODOO_ADMIN_PASSWORD": "x"})


def test_a_value_cannot_inject_config_lines(entrypoint: ModuleType) -> None:
    with pytest.raises(entrypoint.TemplateError, match="single line"):
        entrypoint.render("p = ${P}", {"P": "x\nadmin_passwd = y"})


def test_main_writes_a_private_config_and_execs_the_official_entrypoint(
    entrypoint: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "odoo.conf"
    monkeypatch.setattr(entrypoint, "TEMPLATE", str(TEMPLATE))
    monkeypatch.setattr(entrypoint, "TARGET", str(target))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(entrypoint.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(entrypoint, "installed_addons", lambda rendered, names: set())
    entrypoint.main(["odoo", "--workers=0"])
    assert calls == [("/entrypoint.sh", ["/entrypoint.sh", "odoo", "--workers=0", "--init=chatbot_platform"])]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "db_password = db-pass" in target.read_text()


def test_admin_password_is_hashed_when_passlib_is_there(entrypoint: ModuleType) -> None:
    pytest.importorskip("passlib")
    rendered = entrypoint.hash_admin_password("[options]\nadmin_passwd = secret\n")
    assert "secret" not in rendered and "admin_passwd = $pbkdf2-sha512$" in rendered


def _lookup(installed: set[str] | None):
    calls: list[list[str]] = []

    def lookup(rendered: str, names: list[str]) -> set[str] | None:
        calls.append(names)
        return installed

    return lookup, calls


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (set(), ["odoo", "--init=chatbot_platform"]),  # empty database: first start
        ({"chatbot_platform"}, ["odoo"]),  # later starts: no re-init
        (None, ["odoo", "--init=chatbot_platform"]),  # unknown (database unreachable): install
    ],
)
def test_addon_is_installed_on_first_start_only(
    entrypoint: ModuleType, installed: set[str] | None, expected: list[str]
) -> None:
    lookup, calls = _lookup(installed)
    assert entrypoint.server_arguments(["odoo"], "", {}, lookup) == expected
    assert calls == [["chatbot_platform"]]


@pytest.mark.parametrize(
    "argv",
    [["odoo", "shell"], ["tar", "czf", "x"], ["odoo", "-u", "chatbot_platform"], ["odoo", "--init=base"], []],
)
def test_other_commands_are_left_alone(entrypoint: ModuleType, argv: list[str]) -> None:
    lookup, calls = _lookup(set())
    assert entrypoint.server_arguments(argv, "", {}, lookup) == argv
    assert calls == []


def test_init_addons_come_from_the_environment(entrypoint: ModuleType) -> None:
    lookup, _ = _lookup({"a"})
    assert entrypoint.server_arguments(["--workers=2"], "", {"ODOO_INIT_ADDONS": "a, b"}, lookup) == [
        "--workers=2",
        "--init=b",
    ]
    assert entrypoint.server_arguments(["odoo"], "", {"ODOO_INIT_ADDONS": ""}, lookup) == ["odoo"]


class _Runs:
    """Records the commands first_start runs instead of running them."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.calls: list[tuple[list[str], dict]] = []
        self.codes = list(codes or [])

    def __call__(self, cmd: list[str], **kwargs):
        import subprocess

        self.calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, self.codes.pop(0) if self.codes else 0)


RENDERED = "[options]\ndb_name = odoo\n"


def ALL_INSTALLED(rendered: str, names: list[str]) -> set[str]:
    return set(names)


def test_first_start_installs_then_sets_the_admin_password_then_serves(entrypoint: ModuleType) -> None:
    runs = _Runs()
    env = {"ODOO_ADMIN_USER_PASSWORD": "s3cret-Admin-pw"}
    argv = entrypoint.first_start(
        ["odoo", "--init=chatbot_platform"], RENDERED, env, runs, lambda r: True, ALL_INSTALLED
    )
    assert argv == ["odoo"], "the server starts without --init once the install is done"
    (install, _), (shell, shell_kwargs) = runs.calls
    assert install == ["/entrypoint.sh", "odoo", "--init=chatbot_platform", "--stop-after-init"]
    assert shell == ["/entrypoint.sh", "odoo", "shell", "--no-http", "-d", "odoo"]
    script = shell_kwargs["input"]
    assert 'env.ref("base.user_admin").password = os.environ["ODOO_ADMIN_USER_PASSWORD"]' in script
    assert "env.cr.commit()" in script
    assert "s3cret-Admin-pw" not in script + " ".join(install + shell), "the password never goes on a command line"


@pytest.mark.parametrize(
    ("argv", "env", "empty"),
    [
        (["odoo", "--init=chatbot_platform"], {"ODOO_ADMIN_USER_PASSWORD": "pw"}, False),  # initialised already
        (["odoo"], {"ODOO_ADMIN_USER_PASSWORD": "pw"}, True),  # nothing to install
        (["odoo", "--init=chatbot_platform"], {}, True),  # no password configured
        (["odoo", "shell", "--init=x"], {"ODOO_ADMIN_USER_PASSWORD": "pw"}, True),  # not the server
    ],
)
def test_the_admin_password_is_set_on_the_first_start_only(
    entrypoint: ModuleType, argv: list[str], env: dict[str, str], empty: bool
) -> None:
    runs = _Runs()
    assert entrypoint.first_start(argv, RENDERED, env, runs, lambda r: empty) == argv
    assert runs.calls == []


def test_a_placeholder_admin_password_is_refused(entrypoint: ModuleType) -> None:
    runs = _Runs()
    with pytest.raises(SystemExit, match="change-me"):
        entrypoint.first_start(
            ["odoo", "--init=chatbot_platform"],
            RENDERED,
            {"ODOO_ADMIN_USER_PASSWORD": "change-me"},
            runs,
            lambda r: True,
        )
    assert runs.calls == []


@pytest.mark.parametrize("codes", [[1], [0, 1]])
def test_a_failed_first_start_step_stops_the_container(entrypoint: ModuleType, codes: list[int]) -> None:
    runs = _Runs(codes)
    with pytest.raises(SystemExit, match="failed"):
        entrypoint.first_start(
            ["odoo", "--init=chatbot_platform"],
            RENDERED,
            {"ODOO_ADMIN_USER_PASSWORD": "pw"},
            runs,
            lambda r: True,
            ALL_INSTALLED,
        )
    assert len(runs.calls) == len(codes)


@pytest.mark.parametrize(
    ("present", "message"), [(set(), "left chatbot_platform not installed"), (None, "unreachable after")]
)
def test_an_addon_odoo_skipped_stops_the_first_start(
    entrypoint: ModuleType, present: set[str] | None, message: str
) -> None:
    # Odoo exits 0 after skipping an addon whose external dependency is missing
    runs = _Runs()
    with pytest.raises(SystemExit, match=message):
        entrypoint.first_start(
            ["odoo", "--init=base,chatbot_platform"],
            RENDERED,
            {"ODOO_ADMIN_USER_PASSWORD": "pw"},
            runs,
            lambda r: True,
            lambda r, names: None if present is None else present | {"base"},
        )
    assert len(runs.calls) == 1, "the admin password step and the server never run"


def test_an_unreachable_database_stops_the_first_start_rather_than_serve_admin_admin(entrypoint: ModuleType) -> None:
    runs = _Runs()
    with pytest.raises(SystemExit, match="unreachable"):
        entrypoint.first_start(
            ["odoo", "--init=chatbot_platform"], RENDERED, {"ODOO_ADMIN_USER_PASSWORD": "pw"}, runs, lambda r: None
        )
    assert runs.calls == []
