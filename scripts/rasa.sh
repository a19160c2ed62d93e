#!/usr/bin/env bash
# The Rasa 3.6.21 server in its own Python 3.10 virtual environment, reached over HTTP like in production.
#   scripts/rasa.sh build            create (or reuse) the venv from the committed lock file
#   scripts/rasa.sh validate         `rasa data validate` on nlu_data/
#   scripts/rasa.sh train            train an NLU model from nlu_data/ into $INFOOPT_RASA_MODELS
#   scripts/rasa.sh start [PORT]     start `rasa run --enable-api` on 127.0.0.1 in the background, wait until it answers
#   scripts/rasa.sh stop             stop the server started by `start`
# Environment: INFOOPT_RASA_VENV (default ~/.cache/infoopt/rasa-<lock hash>), INFOOPT_RASA_MODELS
# (default ~/.cache/infoopt/rasa-models; a model is named by a hash of its training data), INFOOPT_RASA_PYTHON (a python3.10 to build with; found automatically).
set -euo pipefail
# Rasa 3.6 pins SQLAlchemy 1.4 and warns about 2.0 on every start; nothing here uses its tracker store.
export SQLALCHEMY_SILENCE_UBER_WARNING=1 PYTHONWARNINGS=ignore::DeprecationWarning
here=$(cd "$(dirname "$0")/.." && pwd)
lock="$here/scripts/rasa/requirements-py310.lock"
lock_hash=$(sha256sum "$lock" | cut -c1-12)
venv=${INFOOPT_RASA_VENV:-$HOME/.cache/infoopt/rasa-$lock_hash}
models=${INFOOPT_RASA_MODELS:-$HOME/.cache/infoopt/rasa-models}
state=${INFOOPT_RASA_STATE:-$here/.rasa}

find_python310() {
    if [ -n "${INFOOPT_RASA_PYTHON:-}" ]; then echo "$INFOOPT_RASA_PYTHON"; return; fi
    for candidate in python3.10 "$HOME/.pyenv/versions/3.10"*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
            command -v "$candidate"; return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10\.' | tail -1 || true)
        if [ -n "$v" ]; then echo "$(pyenv root)/versions/$v/bin/python3.10"; return; fi
    fi
    echo "No Python 3.10 found: Rasa 3.6 needs Python <= 3.10. Install one (pyenv install 3.10) or set INFOOPT_RASA_PYTHON." >&2
    exit 1
}

# pip, without the warnings about index folders that this machine's pip.conf names but lacks.
venv_pip() {
    "$venv/bin/pip" --quiet "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}

build() {
    if [ -x "$venv/bin/rasa" ] && [ -f "$venv/.complete" ]; then
        echo "rasa: reusing $venv"; return
    fi
    py=$(find_python310)
    echo "rasa: building $venv with $py (about 90 s)"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    venv_pip install --upgrade "pip<25" "setuptools==70.3.0" "wheel==0.41.3"
    venv_pip install --no-deps -r "$lock"
    "$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check; exit 1; }
    "$venv/bin/python" -c 'import rasa; print("rasa", rasa.__version__)'
    touch "$venv/.complete"
}

train() {
    build
    mkdir -p "$models"
    target=$(model_path)
    if [ -f "$target" ]; then echo "rasa: model up to date: $target"; return; fi
    cd "$here/nlu_data"
    started=$(date +%s)
    "$venv/bin/rasa" train nlu --config config.yml --domain domain.yml --nlu data \
        --out "$models" --fixed-model-name "$(basename "$target" .tar.gz)" --quiet
    # Kept beside the model for benchmarks/nlu_engines.py.
    echo $(( $(date +%s) - started )) >"${target%.tar.gz}.train-seconds"
    echo "rasa: trained $target in $(cat "${target%.tar.gz}.train-seconds") s"
}

validate() {
    build
    cd "$here/nlu_data"
    # This is an NLU-only project: warnings that intents and responses appear in no story are expected.
    # Every other warning (an example under two intents, an unknown entity, ...) fails the check.
    log=$(mktemp)
    "$venv/bin/rasa" data validate --config config.yml --domain domain.yml --data data >"$log" 2>&1 \
        || { cat "$log"; rm -f "$log"; echo "rasa: data validation failed" >&2; exit 1; }
    unexpected=$(grep -E "UserWarning|WARNING|ERROR" "$log" \
        | grep -v -E "is not used in any story or rule|duplicated intents have been found across multiple domain files: faq" || true)
    rm -f "$log"
    if [ -n "$unexpected" ]; then
        echo "$unexpected" >&2; echo "rasa: data validation found problems" >&2; exit 1
    fi
    echo "rasa: nlu_data is valid"
}

# The model is named by a hash of the lock, config, domain and training data: unchanged data reuses it.
model_path() {
    data_hash=$(cat "$lock" "$here"/nlu_data/config.yml "$here"/nlu_data/domain.yml \
        $(find "$here/nlu_data/data" -name '*.yml' | LC_ALL=C sort) | sha256sum | cut -c1-12)
    echo "$models/nlu-$data_hash.tar.gz"
}

start() {
    port=${1:-5005}
    model=$(model_path)
    [ -f "$model" ] || { echo "rasa: no model for the current nlu_data in $models; run scripts/rasa.sh train" >&2; exit 1; }
    mkdir -p "$state"
    cd "$state"
    nohup "$venv/bin/rasa" run --enable-api --model "$model" --interface 127.0.0.1 --port "$port" \
        >"$state/rasa-server.log" 2>&1 &
    echo $! >"$state/rasa-server.pid"
    for _ in $(seq 1 180); do
        if curl -fsS "http://127.0.0.1:$port/status" 2>/dev/null | grep -q '"model_file"'; then
            echo "rasa: serving $model on http://127.0.0.1:$port"; return
        fi
        if ! kill -0 "$(cat "$state/rasa-server.pid")" 2>/dev/null; then
            echo "rasa: server died; log follows" >&2; tail -50 "$state/rasa-server.log" >&2; exit 1
        fi
        sleep 1
    done
    echo "rasa: server did not answer within 180 s; log follows" >&2; tail -50 "$state/rasa-server.log" >&2; exit 1
}

stop() {
    if [ -f "$state/rasa-server.pid" ]; then
        kill "$(cat "$state/rasa-server.pid")" 2>/dev/null || true
        rm -f "$state/rasa-server.pid"
    fi
}

case "${1:-}" in
    model-path) model_path ;;
    build) build ;;
    validate) validate ;;
    train) train ;;
    start) shift; start "$@" ;;
    stop) stop ;;
    *) echo "usage: $0 build|validate|train|start [PORT]|stop|model-path" >&2; exit 2 ;;
esac
