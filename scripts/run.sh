#!/usr/bin/env bash
# From a fresh machine to a running service on the embedded defaults: SQLite file, in-process Redis,
# embedded NLU. Creates .venv, installs the project, applies migrations, starts, prints the URLs.
#   ./scripts/run.sh                   http://127.0.0.1:8000
#   ./scripts/run.sh --port 9000       extra arguments go to `infoopt serve`
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
    || { echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || { echo "== creating .venv"; "$python" -m venv .venv; }
stamp=.venv/.installed-run-$(sha256sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ] && [ ! -f ".venv/.installed-$(sha256sum pyproject.toml | cut -c1-12)" ]; then
    echo "== installing the project into .venv (first run only)"
    .venv/bin/pip --quiet install --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
    .venv/bin/pip --quiet install -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "pip install failed" >&2; exit 1; }
    touch "$stamp"
fi
echo "== starting (the first start trains the embedded NLU, which takes a little while)"
exec .venv/bin/infoopt serve "$@"
