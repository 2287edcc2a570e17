"""Print the README's configuration table from `.env.example` (one comment line above each variable).

    python tools/config_table.py            # print it
    python tools/config_table.py --write    # replace the table in README.md

The README's table sits between the `config-table` markers; tests/engine/test_docs.py checks that
every Settings field and every Compose variable appears in it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")


def rows(env_example: Path) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    comment = ""
    for raw in env_example.read_text().splitlines():
        match = LINE.match(raw)
        if match:
            name, value = match.groups()
            out.append((name, value, comment))
            comment = ""
        elif raw.startswith("# ") and not raw.startswith("# ---"):
            comment = raw[2:].strip()
        else:
            comment = ""
    seen: dict[str, tuple[str, str, str]] = {}
    for row in out:
        seen.setdefault(row[0], row)
    return list(seen.values())


START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def table(root: Path) -> str:
    lines = ["| Variable | Default / example | Meaning |", "|---|---|---|"]
    for name, value, comment in rows(root / ".env.example"):
        shown = f"`{value}`" if value else "(empty)"
        lines.append(f"| `{name}` | {shown} | {comment.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def readme_with_table(root: Path) -> str:
    readme = (root / "README.md").read_text()
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(root)}{END}{tail}"


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    if "--write" in sys.argv:
        (root / "README.md").write_text(readme_with_table(root))
    else:
        print(table(root), end="")


if __name__ == "__main__":
    sys.exit(main())
