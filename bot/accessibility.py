"""The accessibility statement ("Deklaracja dostępności"), in Polish and in English, as Polish public bodies
publish one under the Act of 4 April 2019 on the digital accessibility of public bodies' websites.

It is a page, not a bot reply: its long text lives in one template per language
(`bot/templates/accessibility_pl.html`, `accessibility_en.html`); the links that lead to it are short
texts in the gettext catalogues. Public, no sign-in. The contact for reports comes from the setting
`INFOOPT_ACCESSIBILITY_CONTACT`; while it is unset the page says so and names the INFO.OPT line instead.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from bot.render import text_html
from infoopt.core.deps import get_app_settings
from infoopt.core.web import templates

pages = APIRouter(include_in_schema=False)

STATEMENT_PATHS = {"pl": "/deklaracja-dostepnosci", "en": "/accessibility"}
# The dates the statement states. Update STATEMENT_UPDATED (and ASSESSED_ON after a new self-assessment)
# whenever the statement's content changes; SERVICE_PUBLISHED is when the service's pages were first put up.
SERVICE_PUBLISHED = date(2026, 11, 22)
STATEMENT_UPDATED = date(2026, 12, 2)
ASSESSED_ON = date(2026, 12, 2)


def statement_url(language: str) -> str:
    """Where the statement is in a reader's language: Polish for Polish, English for everyone else."""
    return STATEMENT_PATHS.get(language, STATEMENT_PATHS["en"])


def _statement(request: Request, language: str) -> Response:
    contact = get_app_settings(request).accessibility_contact
    return templates.TemplateResponse(
        request,
        f"accessibility_{language}.html",
        {
            "statement_language": language,
            "other_url": STATEMENT_PATHS["en" if language == "pl" else "pl"],
            "contact_html": Markup(text_html(contact)) if contact else None,  # noqa: S704 - sanitised
            "published": SERVICE_PUBLISHED,
            "updated": STATEMENT_UPDATED,
            "assessed": ASSESSED_ON,
        },
    )


@pages.get(STATEMENT_PATHS["pl"], response_class=HTMLResponse)
async def statement_pl(request: Request) -> Response:
    """Deklaracja dostępności (Polish)."""
    return _statement(request, "pl")


@pages.get(STATEMENT_PATHS["en"], response_class=HTMLResponse)
async def statement_en(request: Request) -> Response:
    """The accessibility statement (English)."""
    return _statement(request, "en")
