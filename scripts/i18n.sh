#!/usr/bin/env bash
# gettext catalogues with Babel: the English texts in the code are the message ids.
#   scripts/i18n.sh extract     collect the texts into infoopt/core/locales/messages.pot
#   scripts/i18n.sh update      extract, then merge new and changed texts into every language's .po
#   scripts/i18n.sh check       fail when a text has no translation (the test suite checks this too)
# Translators edit infoopt/core/locales/<lang>/LC_MESSAGES/messages.po; the service reads the .po
# files directly, so there is no compile step to forget.
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-.venv/bin/pybabel}
locales=infoopt/core/locales
pot=$locales/messages.pot

extract() {
    "$pybabel" -q extract -F babel.cfg -k say:2 -k N_ --no-location --sort-output \
        --project=infoopt --copyright-holder="INFO.OPT infoline contributors" -o "$pot" .
}

update() {
    extract
    for lang in pl uk ru en; do
        if [ -f "$locales/$lang/LC_MESSAGES/messages.po" ]; then
            "$pybabel" -q update -i "$pot" -d "$locales" -D messages -l "$lang" --no-fuzzy-matching --ignore-obsolete
        else
            "$pybabel" -q init -i "$pot" -d "$locales" -D messages -l "$lang"
        fi
    done
}

check() {
    .venv/bin/python - <<'PY'
import sys
from babel.messages.pofile import read_po
from infoopt.core.i18n import catalogue_path
from infoopt.core.languages import LANGUAGES
missing = []
for language in LANGUAGES:
    with catalogue_path(language).open("rb") as source:
        for message in read_po(source, locale=language):
            if message.id and (not message.string or message.fuzzy):
                missing.append(f"{language}: {message.id!r}")
print("\n".join(missing) or "every text is translated")
sys.exit(1 if missing else 0)
PY
}

case "${1:-}" in
    extract) extract ;;
    update) update ;;
    check) check ;;
    *) echo "usage: $0 extract|update|check" >&2; exit 2 ;;
esac
