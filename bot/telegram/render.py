"""How Telegram shows a Reply: its HTML subset, escaped, split under the 4,096-character limit, with the
reply's actions as inline buttons. Nothing here decides what to say; the conversation did that."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import markdown_html, source_label
from bot.replies import Action, ActionName, Reply

MESSAGE_LIMIT = 4096
# Room for Telegram counting differently than Python in edge cases (surrogate pairs): stay well under.
CHUNK = 3900
CALLBACK_LIMIT = 64  # bytes of callback_data
# Buttons that share a row: the votes, the ratings, the languages.
_SIDE_BY_SIDE = {
    ActionName.HELPFUL,
    ActionName.NOT_HELPFUL,
    ActionName.RATE,
    ActionName.LANGUAGE,
    ActionName.CONSENT,
}
_ICONS = {
    ActionName.HELPFUL: "👍",
    ActionName.NOT_HELPFUL: "👎",
    ActionName.CONSULTANT: "🧑‍💼",
    ActionName.SUBSCRIBE: "🔔",
    ActionName.UNSUBSCRIBE: "🔕",
}


# Tags Telegram understands, by the tag the site's HTML uses.
_KEEP = {"b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "s": "s", "code": "code", "pre": "pre"}


class _TelegramHtml(HTMLParser):
    """Sanitised article HTML (paragraphs, headings, lists, links, emphasis) into Telegram's subset."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # a counter per open list (-1 for bullets)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _KEEP:
            self.out.append(f"<{_KEEP[tag]}>")
        elif tag in ("h1", "h2", "h3", "h4"):
            self.out.append("<b>")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.out.append(f'<a href="{html.escape(href, quote=True)}">' if href else "<a>")
        elif tag == "ul":
            self.lists.append([-1])
        elif tag == "ol":
            self.lists.append([0])
        elif tag == "li":
            counter = self.lists[-1] if self.lists else [-1]
            if counter[0] >= 0:
                counter[0] += 1
                self.out.append(f"{counter[0]}. ")
            else:
                self.out.append("• ")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "blockquote":
            self.out.append("<blockquote>")

    def handle_endtag(self, tag: str) -> None:
        if tag in _KEEP:
            self.out.append(f"</{_KEEP[tag]}>")
        elif tag in ("h1", "h2", "h3", "h4"):
            self.out.append("</b>\n\n")
        elif tag == "a":
            self.out.append("</a>")
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n")
        elif tag == "p":
            self.out.append("\n\n")
        elif tag == "blockquote":
            self.out.append("</blockquote>\n\n")

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def text(self) -> str:
        joined = "".join(self.out)
        while "\n\n\n" in joined:
            joined = joined.replace("\n\n\n", "\n\n")
        return joined.strip()


def markdown_to_telegram(markdown: str) -> str:
    """An article's Markdown as Telegram HTML (through the site's sanitiser first)."""
    parser = _TelegramHtml()
    parser.feed(markdown_html(markdown))
    parser.close()
    return parser.text()


def split_message(text: str, limit: int = CHUNK) -> list[str]:
    """Telegram HTML cut into messages under the limit, at paragraph, then line, then word boundaries,
    never inside a tag (a block too long for one message loses its markup rather than break it)."""
    chunks: list[str] = []
    current = ""
    for block in text.split("\n\n"):
        pieces = [block] if len(block) <= limit else _hard_split(block, limit)
        for piece in pieces:
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks or [""]


def _hard_split(block: str, limit: int) -> list[str]:
    plain = html.escape(html.unescape(_strip_tags(block)), quote=False)
    pieces, current = [], ""
    for word in plain.replace("\n", " \n ").split(" "):
        if len(current) + len(word) + 1 > limit and current:
            pieces.append(current.strip())
            current = ""
        while len(word) > limit:  # one enormous "word" (a pasted string)
            pieces.append(word[:limit])
            word = word[limit:]
        current += word + " "
    if current.strip():
        pieces.append(current.strip())
    return pieces


def _strip_tags(block: str) -> str:
    parser = _Plain()
    parser.feed(block)
    parser.close()
    return "".join(parser.parts)


class _Plain(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        self.parts.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.parts.append(f"&#{name};")


def reply_html(reply: Reply) -> str:
    """The whole reply as Telegram HTML: the text, and under an article the date checked and the sources."""
    body = markdown_to_telegram(reply.text) if reply.markdown else html.escape(reply.text, quote=False)
    lines = [body]
    notes = reply.notes
    if reply.markdown and reply.sources:
        links = " · ".join(
            f'<a href="{html.escape(url, quote=True)}">{html.escape(source_label(url), quote=False)}</a>'
            for url in reply.sources
        )
        lines.append(f"{html.escape(notes.get('sources', 'Sources'), quote=False)}: {links}")
    if notes.get("verified_on") and reply.article_id:
        lines.append(f"<i>✔ {html.escape(notes['verified_on'], quote=False)}</i>")
    if notes.get("stale"):
        lines.append(f"<i>⚠ {html.escape(notes['stale'], quote=False)}</i>")
    return "\n\n".join(line for line in lines if line)


def callback_data(action: Action) -> str:
    data = f"{action.action.value}:{action.value or ''}"
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError(f"callback data too long for Telegram: {data!r}")
    return data


def parse_callback(data: str) -> tuple[ActionName, str | None] | None:
    """The action and value a button carried, or None for anything this bot never sent."""
    name, _, value = data.partition(":")
    try:
        action = ActionName(name)
    except ValueError:
        return None
    return action, value or None


def keyboard(actions: list[Action] | tuple[Action, ...]) -> InlineKeyboardMarkup | None:
    """The reply's actions as inline buttons: votes, ratings and languages side by side, the rest a row each."""
    if not actions:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    previous: ActionName | None = None
    for action in actions:
        icon = _ICONS.get(action.action)
        label = f"{icon} {action.label}" if icon else action.label
        button = InlineKeyboardButton(text=label[:64], callback_data=callback_data(action))
        if rows and action.action in _SIDE_BY_SIDE and previous in _SIDE_BY_SIDE and len(rows[-1]) < 5:
            rows[-1].append(button)
        else:
            rows.append([button])
        previous = action.action
    return InlineKeyboardMarkup(inline_keyboard=rows)
