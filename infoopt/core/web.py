"""Server-rendered pages: one Jinja2 environment over every package's templates, local static files.

The staff pages speak the staff member's language: `staff_language` picks it from the browser's
`Accept-Language` header, and the context processor `staff_i18n` puts the `staff` catalogue's
`gettext`/`ngettext` for that language into each page's context, where `{% trans %}` and `_()` find
them (a name in the render context shadows the environment's globals). Nothing is shared between
requests but the immutable compiled catalogues; the environment's own globals are the untranslated
(English) fallback for a template rendered outside a request.
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from infoopt.core.i18n import translations
from infoopt.core.languages import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIRS = [
    ROOT / "infoopt" / "core" / "templates",
    ROOT / "knowledge_base" / "templates",
    ROOT / "bot" / "templates",
    ROOT / "tickets" / "templates",
]
STAFF_DOMAIN = "staff"
STAFF_DEFAULT_LANGUAGE = "en"


def staff_language(accept_language: str | None) -> str:
    """The first of pl/uk/ru/en the browser asks for, by quality; English when none matches."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().split("-")[0].lower()
        if language in LANGUAGES and quality > 0:
            wanted.append((-quality, position, language))
    return min(wanted)[2] if wanted else STAFF_DEFAULT_LANGUAGE


STAFF_LANGUAGE_COOKIE = "infoopt_staff_lang"


def request_language(request: Request) -> str:
    """The staff language of one request: the one chosen on the pages, else the browser's."""
    chosen = request.cookies.get(STAFF_LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        assert chosen is not None
        return chosen
    return staff_language(request.headers.get("accept-language"))


def staff_text(request: Request, message: str, **values: object) -> str:
    """`message` (an English msgid of the `staff` catalogue) in the request's language, {name} filled."""
    text = translations(request_language(request), STAFF_DOMAIN).gettext(message)
    return text.format(**values) if values else text


def _template_gettext(catalogue: gettext_module.GNUTranslations) -> Callable[..., str]:
    # What jinja2.ext.i18n's newstyle gettext does: translate, escape the values, fill %(name)s.
    # The catalogue texts are the repository's own (trusted, may hold <code>); only the values are escaped.
    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        text = catalogue.gettext(message)
        if context.eval_ctx.autoescape:
            return Markup(text) % variables  # noqa: S704 - trusted catalogue text, values escaped
        return text % variables

    return gettext


def _template_ngettext(catalogue: gettext_module.GNUTranslations) -> Callable[..., str]:
    @pass_context
    def ngettext(context: Context, singular: str, plural: str, number: int, **variables: Any) -> str:
        variables.setdefault("num", number)
        text = catalogue.ngettext(singular, plural, number)
        if context.eval_ctx.autoescape:
            return Markup(text) % variables  # noqa: S704 - trusted catalogue text, values escaped
        return text % variables

    return ngettext


def staff_i18n(request: Request) -> dict[str, Any]:
    """Context processor: the request's language and its `staff` catalogue for `{% trans %}` and `_()`."""
    language = request_language(request)
    catalogue = translations(language, STAFF_DOMAIN)
    return {
        "ui_language": language,
        "ui_languages": LANGUAGES,
        "ui_path": request.url.path,
        "gettext": _template_gettext(catalogue),
        "ngettext": _template_ngettext(catalogue),
    }


environment = Environment(
    loader=ChoiceLoader([FileSystemLoader(str(path)) for path in TEMPLATE_DIRS]),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
environment.policies["ext.i18n.trimmed"] = True
# The fallback outside a request (immutable, English = the msgids); requests shadow it with their own.
environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


def pairs(value: object) -> str:
    """A mapping as people read it: "pl 2 · uk 1", not Python's "{'pl': 2, 'uk': 1}"."""
    if isinstance(value, dict):
        return " · ".join(f"{key} {pairs(item)}" for key, item in value.items() if item not in (None, ""))
    if isinstance(value, list | tuple):
        return ", ".join(pairs(item) for item in value)
    return str(value)


environment.filters["pairs"] = pairs
templates = Jinja2Templates(env=environment, context_processors=[staff_i18n])
