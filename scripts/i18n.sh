#!/usr/bin/env bash
# gettext catalogues with Babel: the English texts in the code are the message ids. Two domains:
#   messages  what foreigners read and hear (bot, tickets, cases): babel.cfg, say(language, "…"), N_("…")
#   staff     the staff pages (admins, supervisors, consultants): babel-staff.cfg, {% trans %} and _()
#             in the staff templates, staff_text(request, "…") in infoopt/staff
#   scripts/i18n.sh extract     collect the texts into infoopt/core/locales/<domain>.pot
#   scripts/i18n.sh update      extract, then merge new and changed texts into every language's .po
#   scripts/i18n.sh check       fail when a text has no translation (the test suite checks this too)
# Translators edit infoopt/core/locales/<lang>/LC_MESSAGES/<domain>.po; the service reads the .po
# files directly, so there is no compile step to forget.
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-.venv/bin/pybabel}
locales=infoopt/core/locales
domains=(messages staff)

extract_domain() {
    local domain=$1
    local -a options
    case "$domain" in
        messages) options=(-F babel.cfg -k say:2 -k N_) ;;
        staff) options=(-F babel-staff.cfg -k staff_text:2) ;;
    esac
    "$pybabel" -q extract "${options[@]}" --no-location --sort-output \
        --project=infoopt --copyright-holder="INFO.OPT infoline contributors" -o "$locales/$domain.pot" .
}

extract() {
    for domain in "${domains[@]}"; do
        extract_domain "$domain"
    done
}

update() {
    extract
    for domain in "${domains[@]}"; do
        for lang in pl uk ru en; do
            if [ -f "$locales/$lang/LC_MESSAGES/$domain.po" ]; then
                "$pybabel" -q update -i "$locales/$domain.pot" -d "$locales" -D "$domain" -l "$lang" \
                    --no-fuzzy-matching --ignore-obsolete
            else
                "$pybabel" -q init -i "$locales/$domain.pot" -d "$locales" -D "$domain" -l "$lang"
            fi
        done
    done
}

check() {
    .venv/bin/python - <<'PY'
import sys
from babel.messages.pofile import read_po
from infoopt.core.i18n import DOMAINS, catalogue_path
from infoopt.core.languages import LANGUAGES
missing = []
for domain in DOMAINS:
    for language in LANGUAGES:
        with catalogue_path(language, domain).open("rb") as source:
            for message in read_po(source, locale=language, domain=domain):
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if message.id and (not all(strings) or message.fuzzy):
                    missing.append(f"{domain}/{language}: {message.id!r}")
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
