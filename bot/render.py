"""How the web channel shows a Reply's text: sanitised HTML, tappable phone numbers and e-mail
addresses, and sources as short labels instead of raw URLs.

Telegram (its HTML subset) and the phone (plain speech) render the same Reply their own way.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote, urlsplit

import nh3

from knowledge_base.markdown import render_markdown

# Polish numbers as the articles write them: "12 210 20 20" (landline) or "600 123 456" (mobile).
_PHONE = re.compile(r"(?<![\d+])(\d{2} \d{3} \d{2} \d{2}|\d{3} \d{3} \d{3})(?!\d)")
_EMAIL = re.compile(r"(?<![\w.@])([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_LINK_SPAN = re.compile(r"\[[^\]]*\]\([^)]*\)|<[^>]+>|https?://\S+")


def _tel(number: str) -> str:
    return "tel:+48" + number.replace(" ", "")


def _linkify_markdown(text: str) -> str:
    """Phone numbers and e-mail addresses as Markdown links, leaving existing links alone."""

    def plain(segment: str) -> str:
        segment = _PHONE.sub(lambda m: f"[{m.group(1)}]({_tel(m.group(1))})", segment)
        return _EMAIL.sub(lambda m: f"[{m.group(1)}](mailto:{m.group(1)})", segment)

    parts: list[str] = []
    position = 0
    for match in _LINK_SPAN.finditer(text):
        parts.append(plain(text[position : match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(plain(text[position:]))
    return "".join(parts)


def markdown_html(text: str) -> str:
    """An article's Markdown as sanitised HTML with tappable phone numbers and e-mail addresses."""
    return render_markdown(_linkify_markdown(text))


def text_html(text: str) -> str:
    """A plain reply (never Markdown) as HTML paragraphs, with tappable phone numbers and e-mails."""
    escaped = html.escape(text)
    escaped = _PHONE.sub(lambda m: f'<a href="{_tel(m.group(1))}">{m.group(1)}</a>', escaped)
    escaped = _EMAIL.sub(lambda m: f'<a href="mailto:{m.group(1)}">{m.group(1)}</a>', escaped)
    paragraphs = [part.replace("\n", "<br>") for part in escaped.split("\n\n") if part.strip()]
    body = "".join(f"<p>{part}</p>" for part in paragraphs)
    return nh3.clean(body, tags={"p", "br", "a"}, attributes={"a": {"href"}}, url_schemes={"tel", "mailto"})


# Hosts people recognise, named as the office names them.
_SITES = {
    "infoopt.pl": "INFO.OPT",
    "muw.pl": "Małopolski Urząd Wojewódzki",
    "malopolska.uw.gov.pl": "Małopolski Urząd Wojewódzki",
    "udsc.gov.pl": "Urząd do Spraw Cudzoziemców",
    "mos.cudzoziemcy.gov.pl": "MOS",
    "isap.sejm.gov.pl": "ISAP (Dziennik Ustaw)",
    "praca.gov.pl": "praca.gov.pl",
    "biznes.gov.pl": "biznes.gov.pl",
}


def source_label(url: str) -> str:
    """A short label for a source link: the site, and the page named from its address."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    site = _SITES.get(host)
    if site is None and host == "gov.pl" and parts.path.startswith("/web/"):
        site = {"udsc": "Urząd do Spraw Cudzoziemców"}.get(parts.path.split("/")[2], "gov.pl")
    site = site or host
    page = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) if parts.path.strip("/") else ""
    page = re.sub(r"\.(html?|php|aspx)$", "", page)
    page = re.sub(r"^[\d,._-]+", "", page)  # CMS ids in front of the page name ("36630,Tryb-odwolawczy")
    page = re.sub(r"[-_]+", " ", page).strip()
    if not page or page.isdigit() or len(page) < 4 or "DocDetails" in page:
        return site
    if len(page) > 48:
        page = page[:47].rstrip() + "…"
    return f"{site}: {page}"
