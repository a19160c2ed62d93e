#!/usr/bin/env bash
# The whole test suite against the real parts: PostgreSQL, Redis and the Rasa server on loopback,
# Chromium for the web pages. Installs what is missing, starts everything in a temporary directory,
# runs the linters and the tests, and stops everything again, whatever happens.
#
#   ./scripts/test.sh                 everything (what CI runs)
#   ./scripts/test.sh -k readyz       extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\n== %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        fail "need root to run: $* (install it yourself, or run as root)"; fi
}

# --- system packages ---------------------------------------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
missing=()
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

# --- the project's virtual environment ---------------------------------------------------------
python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || fail "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
[ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
    say "installing the project and its test tools into .venv"
    .venv/bin/pip --quiet install --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
    .venv/bin/pip --quiet install -e '.[dev]' 2>&1 | { grep -v 'is ignored: it is neither' || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "pip install -e .[dev]"
    rm -f .venv/.installed-*; touch "$stamp"
fi
.venv/bin/python -c 'import infoopt, playwright, sqlmodel' || fail "the .venv is incomplete; delete it and run again"

# --- axe-core for the accessibility tests (tests/test_a11y.py) ---------------------------------------
# From the npm registry, pinned by tests/a11y/package-lock.json; installed once per lock into the cache
# (like the Rasa venv) and put into the test pages from that file: nothing downloads while tests run.
a11y_lock=$(cat tests/a11y/package.json tests/a11y/package-lock.json | sha256sum | cut -c1-12)
a11y_dir=${INFOOPT_A11Y_DIR:-$HOME/.cache/infoopt/a11y-$a11y_lock}
if [ ! -f "$a11y_dir/.complete" ]; then
    say "installing axe-core from the npm registry into $a11y_dir"
    rm -rf "$a11y_dir"; mkdir -p "$a11y_dir"
    cp tests/a11y/package.json tests/a11y/package-lock.json "$a11y_dir/"
    npm ci --prefix "$a11y_dir" --ignore-scripts --no-audit --no-fund --loglevel=error || fail "npm ci (axe-core)"
    touch "$a11y_dir/.complete"
fi
export INFOOPT_TEST_AXE="$a11y_dir/node_modules/axe-core/axe.min.js"
[ -f "$INFOOPT_TEST_AXE" ] || fail "axe-core is incomplete in $a11y_dir; delete it and run again"

# --- services on loopback, in a temporary directory -----------------------------------------------
work=$(mktemp -d /tmp/infoopt-test.XXXXXX)
chmod 755 "$work"
cleanup() {
    status=$?
    set +e
    INFOOPT_RASA_STATE="$work/rasa" scripts/rasa.sh stop >/dev/null 2>&1
    [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null
    if [ -f "$work/pg/postmaster.pid" ]; then
        if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1
        else "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1; fi
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "starting PostgreSQL ($pg_bin)"
pg_port=$(free_port)
pg_run=()
if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root; its Debian package brings the postgres user.
    id postgres >/dev/null 2>&1 || as_root useradd --system --home-dir "$work" postgres
    mkdir -p "$work/pg" "$work/pgsock" "$work/pglog"; chown postgres "$work/pg" "$work/pgsock" "$work/pglog"
    pg_run=(runuser -u postgres --)
else
    mkdir -p "$work/pg" "$work/pgsock" "$work/pglog"
fi
"${pg_run[@]}" "$pg_bin/initdb" -D "$work/pg" --username=infoopt --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log"; fail "initdb"; }
"${pg_run[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pglog/pg.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work/pgsock -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
    || { cat "$work/pglog/pg.log"; fail "PostgreSQL did not start"; }
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U infoopt infoopt_test || fail "createdb"
export INFOOPT_TEST_DATABASE_URL="postgresql://infoopt@127.0.0.1:$pg_port/infoopt_test"

say "starting Redis"
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log" || fail "redis-server"
for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$redis_port" ping | grep -q PONG || { cat "$work/redis.log"; fail "Redis did not start"; }
export INFOOPT_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"

say "building, training and starting the Rasa server"
scripts/rasa.sh build
scripts/rasa.sh validate
scripts/rasa.sh train
rasa_port=$(free_port)
INFOOPT_RASA_STATE="$work/rasa" scripts/rasa.sh start "$rasa_port"
export INFOOPT_TEST_RASA_URL="http://127.0.0.1:$rasa_port"
export INFOOPT_TEST_CHROMIUM=${INFOOPT_TEST_CHROMIUM:-/usr/bin/chromium}

# --- checks --------------------------------------------------------------------------------------
say "ruff"
.venv/bin/ruff check .
say "mypy"
.venv/bin/mypy
say "import-linter"
.venv/bin/lint-imports
say "NLU: both engines on the held-out nlu_data/tests (fails below the thresholds)"
nlu_dir=$work/nlu-cache
INFOOPT_DATA_DIR=$nlu_dir INFOOPT_LOG_LEVEL=WARNING .venv/bin/infoopt nlu train --engine embedded
INFOOPT_DATA_DIR=$nlu_dir INFOOPT_LOG_LEVEL=WARNING .venv/bin/infoopt nlu eval nlu_data/tests/test_nlu.yml \
    --engine embedded --min-language-accuracy 0.92 --min-oos-rejection 0.90 --no-per-intent \
    --min-answered-right 0.85 --max-answered-wrong 0.02
INFOOPT_DATA_DIR=$nlu_dir INFOOPT_LOG_LEVEL=WARNING .venv/bin/infoopt nlu eval nlu_data/tests/test_nlu.yml \
    --engine rasa --rasa-url "$INFOOPT_TEST_RASA_URL" --min-language-accuracy 0.88 --min-oos-rejection 0.80 --no-per-intent \
    --min-answered-right 0.80 --max-answered-wrong 0.04

say "pytest"
# The tests never read a developer's .env: they configure every part themselves.
INFOOPT_ENV=test .venv/bin/python -m pytest "$@"

if [ $# -eq 0 ]; then
    say "schemathesis: the whole OpenAPI against a running server, every check (fails on any finding)"
    "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U infoopt infoopt_schema || fail "createdb infoopt_schema"
    api_port=$(free_port)
    api_env=(env INFOOPT_ENV=test INFOOPT_DATA_DIR="$work/api" INFOOPT_LOG_LEVEL=WARNING
        INFOOPT_DATABASE_URL="postgresql://infoopt@127.0.0.1:$pg_port/infoopt_schema"
        INFOOPT_REDIS_URL="redis://127.0.0.1:$redis_port/1"
        INFOOPT_ASK_LIMIT_PER_MINUTE=1000000 INFOOPT_ASK_LIMIT_PER_ADDRESS_PER_MINUTE=1000000
        INFOOPT_FEEDBACK_LIMIT_PER_MINUTE=1000000 INFOOPT_READ_LIMIT_PER_ADDRESS_PER_MINUTE=1000000)
    "${api_env[@]}" .venv/bin/infoopt serve --port "$api_port" >"$work/api.log" 2>&1 &
    api_pid=$!
    for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$api_port/readyz" >/dev/null && break; sleep 1; done
    curl -sf "http://127.0.0.1:$api_port/readyz" >/dev/null || { cat "$work/api.log"; kill $api_pid; fail "the API server did not start"; }
    password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(18))')
    echo "$password" | "${api_env[@]}" .venv/bin/infoopt users create --username schemathesis --role admin --password-stdin >/dev/null
    token=$(curl -sf "http://127.0.0.1:$api_port/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\": \"schemathesis\", \"password\": \"$password\"}" | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    status=0
    .venv/bin/schemathesis run "http://127.0.0.1:$api_port/openapi.json" --checks all \
        --max-examples 60 --seed 20261202 -H "Authorization: Bearer $token" --no-color \
        --exclude-path /api/v1/tickets/events || status=$?  # an endless event stream; tested in pytest
    kill $api_pid; wait $api_pid 2>/dev/null || true
    [ $status -eq 0 ] || fail "schemathesis found problems in the API (above)"
fi
