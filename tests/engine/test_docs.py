"""The README's configuration table is generated from .env.example and covers every setting."""

import sys
from pathlib import Path

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import config_table  # noqa: E402


def test_readme_table_is_current():
    assert (ROOT / "README.md").read_text() == config_table.readme_with_table(ROOT), (
        "README configuration table is stale: run `python tools/config_table.py --write`"
    )


def test_every_engine_setting_is_documented():
    documented = {name for name, _, _ in config_table.rows(ROOT / ".env.example")}
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"settings missing from .env.example/README: {sorted(missing)}"


def test_every_documented_row_has_a_meaning():
    assert all(comment for _, _, comment in config_table.rows(ROOT / ".env.example"))
