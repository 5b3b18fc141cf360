# Shared by scripts/demo and scripts/test: make .venv and install offsite, every
# plugin under plugins/, and the test tools into it. Sourced, not run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${OFFSITE_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "offsite needs Python 3.11 or newer ($PY is $("$PY" --version 2>&1))" >&2
    exit 2
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
        echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2
        exit 2
    fi
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# One pip call, so the resolver sees the core and every plugin together.
# Non-editable: the test run then checks what a user would install.
plugin_dirs=()
for d in "$ROOT"/plugins/*/; do
    [ -f "$d/pyproject.toml" ] && plugin_dirs+=("$d")
done
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --upgrade --force-reinstall --no-deps "$ROOT" "${plugin_dirs[@]}"
# Then their dependencies, the test tools, and each plugin's own test extras
# (its test servers, e.g. moto for S3; pip only notes a plugin without one).
plugin_tests=()
for d in "${plugin_dirs[@]}"; do plugin_tests+=("${d%/}[test]"); done
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "$ROOT[test]" "${plugin_tests[@]}"
export PATH="$VENV/bin:$PATH"
