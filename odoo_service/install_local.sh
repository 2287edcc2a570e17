#!/usr/bin/env bash
# Create or reuse the virtualenv that runs Odoo 18 from a source tree (local mode and the tests).
#   ODOO_SRC=/path/to/odoo-18 odoo_service/install_local.sh [--check]
# ODOO_SRC is an Odoo 18.0 source tree: a `git clone -b 18.0 --depth 1` of odoo/odoo, or any tree
# with the release layout (`setup/odoo`, `odoo/release.py`, `requirements.txt`). It is only read.
# Env: ODOO_VENV (default <repo>/.venv-odoo), PYTHON (default python3.11, python3.12, python3).
# Idempotent: a stamp holding the hash of Odoo's requirements, the addon's and this script skips
# work that is already done. Prints, as its last line, the command that runs this Odoo.
# --check only validates ODOO_SRC and the Python (exit 1 with one line on stderr), installs nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${ODOO_VENV:-$root/.venv-odoo}"
addon_reqs="$here/requirements-local.txt"

die() { printf 'install_local: %s\n' "$*" >&2; exit 1; }

check_only=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    *) die "unknown option ${1} (usage: ODOO_SRC=/path/to/odoo-18 $0 [--check])" ;;
esac

src="${ODOO_SRC:-}"
[ -n "$src" ] || die "set ODOO_SRC to an Odoo 18 source tree (git clone -b 18.0 --depth 1 https://github.com/odoo/odoo)"
[ -d "$src" ] || die "ODOO_SRC=$src is not a directory"
src="$(cd "$src" && pwd)"
[ -f "$src/odoo/release.py" ] && [ -f "$src/setup/odoo" ] && [ -f "$src/requirements.txt" ] \
    || die "ODOO_SRC=$src is not an Odoo source tree (no odoo/release.py, setup/odoo or requirements.txt)"
series="$(sed -nE "s/^version_info = \(([0-9]+), ([0-9]+).*/\1.\2/p" "$src/odoo/release.py")"
[ "$series" = "18.0" ] || die "ODOO_SRC=$src is Odoo ${series:-of an unknown version}, not 18.0"

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
    done
fi
if [ -z "$python_bin" ] || ! "$python_bin" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
    die "Odoo 18 needs Python 3.10 to 3.12 (set PYTHON=/path/to/python3.11)"
fi

[ "$check_only" = 0 ] || exit 0

if [ ! -x "$venv/bin/python" ]; then
    echo "install_local: creating virtualenv $venv"
    "$python_bin" -m venv "$venv"
fi

stamp="$venv/.odoo-installed"
want="$(cat "$src/requirements.txt" "$addon_reqs" "$here/custom_addons/chatbot_platform/requirements.txt" "$0" | sha256sum | cut -d' ' -f1) $src"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "install_local: $venv is up to date"
else
    pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
    # Odoo 18's pins build from source on current Pythons with old setuptools only; python-ldap
    # needs system headers and only serves the auth_ldap addon, so it is left out.
    "${pip[@]}" install --upgrade "pip>=24" "setuptools<70" wheel
    reqs="$(mktemp)"
    trap 'rm -f "$reqs"' EXIT
    grep -viE '^\s*python-ldap\b|^\s*cbor2\b' "$src/requirements.txt" > "$reqs"
    echo "install_local: installing Odoo's requirements into $venv (a few minutes the first time)"
    "${pip[@]}" install --no-build-isolation "cbor2>=5.6" -r "$reqs" -r "$addon_reqs" \
        || die "pip could not install Odoo's requirements into $venv"
    echo "$want" > "$stamp"
    echo "install_local: done ($venv)"
fi
"$venv/bin/python" -c "import sys; sys.path.insert(0, '$src'); import odoo.release as r; assert r.version_info[:2] == (18, 0)" \
    || die "$venv cannot import Odoo from $src"
echo "$venv/bin/python $src/setup/odoo"
