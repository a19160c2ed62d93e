"""Text as the embedded classifier sees it, typed or heard: speech-to-text quirks folded away.

A question typed into the chat and the same question said on the phone should reach the classifier
as one text. Phone speech arrives from speech-to-text with no punctuation, in lower case, with
hesitations ("eee", "yyy", "эээ", "um"), a phone preamble ("halo halo dzień dobry", "алло
здравствуйте") and Polish terms spelled out or misheard ("u ka er" for UKR, "pezel" for PESEL, "oh
sweat chen ye" for oświadczenie). `prepare` folds both kinds of text to one form; the embedded engine
applies it to the training examples and to every message alike, so a change here needs a new
`MODEL_VERSION` in `bot.nlu.embedded`.

Every word list below says where it came from. The rules are patterns over those lists, never a
rule for one sentence: the variants were collected from the speech-to-text output described in
issue 12 (fillers, preambles, mishearings of the Polish terms callers use) and from the Polish,
English, Ukrainian and Russian names of the letters.
"""

from __future__ import annotations

import re

from knowledge_base.text import fold, to_latin

# Punctuation around a word: the word lists below are matched without it ("halo," is "halo"), but the
# text keeps it, since typed questions carry it and the classifier was measured better with it.
_EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")

# Hesitations as speech-to-text writes them: a vowel or hum held long ("eee", "yyy", "mmm", "эээ",
# "ммм"; "ее" is a Russian word, so the Cyrillic "е" needs three), and the English "um", "uh", "erm",
# "hmm". Single letters are not fillers: they may be a spelled-out acronym ("pe es e el") or a Polish
# word ("i", "w", "z").
_FILLER = re.compile(
    r"^(?:e{2,}|y{2,}|m{2,}|a{3,}|u{2,}m*|h?m{2,}|u+m+|u+h+|e+r+m+|h+m+|ы{2,}|э{2,}|е{3,}|м{2,}|а{3,}|э+м+|мгм)$"
)
# Discourse words with no content of their own that callers put anywhere in a sentence: issue 12 names
# "ну" and "ось"; "вот", "короче" and "знаете"/"знаєте" ("you know") are the same kind. The English
# "like", "so", "well" stay: they carry meaning in typed English too.
_DISCOURSE = frozenset({"ну", "ось", "вот", "короче", "знаете", "знаєте"})

# The preamble: greetings and "hello" said into the line before the question ("halo halo dzień
# dobry", "алло здравствуйте", "hello hi good morning"). Only a leading run of them is dropped, and only
# when a question of at least `_QUESTION_WORDS_AT_LEAST` words follows; otherwise the message is a
# greeting ("dzień dobry, mam pytanie") and keeps its words.
_PREAMBLE = re.compile(
    r"^(?:\W*(?:"
    r"halo|hallo|allo|alo|dzien dobry|dobry wieczor|witam(?: serdecznie)?|czesc"  # Polish
    r"|hello|hi|hey|good (?:morning|afternoon|evening|day)"  # English
    r"|алло|ало|альо|алле|алё|здравствуйте|здрасте|здрастуйте|привіт|привет|вітаю"  # Ukrainian, Russian
    r"|(?:добрий|доброго|добрый|доброе) (?:день|дня|ранку|утро|вечір|вечер)"
    # The salutation of a formal letter (issue 15): "Szanowni Państwo", "Dear Sir or Madam", "To whom it
    # may concern", "Уважаемые господа", "Шановні пані та панове".
    r"|szanown[iay] (?:panstwo|pani|panie)|dear (?:sir or madam|sir|madam|sirs)|to whom it may concern"
    r"|(?:уважаемые|шановні) (?:господа|пані та панове|панове|дами и господа)"
    r")(?=\W|$)\W*)+"
)
_QUESTION_WORDS_AT_LEAST = 4
_WORD = re.compile(r"\w+")

# Names of letters as callers spell acronyms (UKR, PESEL, MOS, WSC, AGH): Polish letter names and
# single letters, and the Ukrainian and Russian names in Cyrillic. Letter names that are also common
# words are left out ("be", "te", "ku"; "де" = where, "це" = this, "ес" = EU, "же"); single letters that are
# words ("a", "i", "o", "u", "w", "z", "в", "и", "у", "з", "і", "о", "а", "к", "с", "я", "й", "ж", "б")
# count only next to a letter that is not a word.
_LATIN_LETTER_NAMES = {
    "ce": "c", "ef": "f", "gie": "g", "ha": "h", "jot": "j", "ka": "k", "el": "l",
    "em": "m", "en": "n", "pe": "p", "er": "r", "es": "s", "wu": "w", "iks": "x", "zet": "z",
}  # fmt: skip
_CYRILLIC_LETTER_NAMES = {
    "бе": "б", "бэ": "б", "ве": "в", "вэ": "в", "ге": "г", "гэ": "г", "ка": "к", "ел": "л", "ель": "л",
    "эл": "л", "эль": "л", "ем": "м", "эм": "м", "ен": "н", "эн": "н", "пе": "п", "пэ": "п",
    "ер": "р", "эр": "р", "эс": "с", "еф": "ф", "эф": "ф", "ха": "х", "цэ": "ц",
}  # fmt: skip
_WORD_LETTERS = frozenset("aiouwzвиузіоаксяйжб")


def _bare(token: str) -> str:
    return _EDGE_PUNCTUATION.sub("", token)


def _letter(token: str) -> str | None:
    """The letter a spelled-out token stands for, or None."""
    token = _bare(token)
    if len(token) == 1 and token.isalpha():
        return token
    return _LATIN_LETTER_NAMES.get(token) or _CYRILLIC_LETTER_NAMES.get(token)


def _join_spelled_letters(tokens: list[str]) -> list[str]:
    """'u ka er' -> 'ukr', 'w s c' -> 'wsc', 'а гэ ха' -> 'агх': a run of spelled letters of one
    script becomes one word. A letter that is also a word stays a word at the end of a run ("u ka er
    w peselu") and before another such letter at its start ("в а гэ ха" is "в" + "агх")."""
    joined: list[str] = []
    i = 0
    while i < len(tokens):
        j = i
        letters: list[str] = []
        while j < len(tokens):
            letter = _letter(tokens[j])
            if letter is None or (letters and letter.isascii() != letters[0].isascii()):
                break
            letters.append(letter)
            j += 1
        start, end = i, j
        while end > start and _bare(tokens[end - 1]) in _WORD_LETTERS:
            end -= 1
        while (
            start + 1 < end
            and _bare(tokens[start]) in _WORD_LETTERS
            and _bare(tokens[start + 1]) in _WORD_LETTERS
        ):
            start += 1
        # Two letters make an acronym ("pe el"), but one that opens with a word needs three ("u k r"):
        # "i er" is "I, er", not "ir".
        if end - start >= (3 if _bare(tokens[start]) in _WORD_LETTERS else 2):
            joined.extend(tokens[i:start])
            joined.append("".join(letters[start - i : end - i]))
            joined.extend(tokens[end:j])
            i = j
        else:
            joined.append(tokens[i])
            i += 1
    return joined


# Mishearings of the Polish terms, on folded text (no Polish diacritics, "ł" -> "l"). Each pattern
# names the term it restores; the variants are speech-to-text renderings of callers' pronunciation:
# English engines split a Polish word into English ones ("carta pobi too", "oh sweat chen ye"), and
# Ukrainian and Russian engines hear CUKR as "sugar" ("цукру", "цукер").
_MISHEARINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), canonical)
    for pattern, canonical in (
        # karta pobytu (residence card): "carta pobi too", "carte po bi tu", "karta pobitu"
        (r"\bcart[ae](?=\s+po)", "karta"),
        (r"\bpo\s?b[iy]\s?t(?:oo|u)\b", "pobytu"),
        # oswiadczenie (the employer's declaration): "oh sweat chen ye", "o sviad chenie", "osh viad chenia"
        (r"\bo\s?h?\s?s\s?h?\s?(?:w|v|wh)\s?(?:i|y|ie|ye)?\s?(?:a|e|ea)\s?(?:d|t)s?\s?(?:cz|ch|tch|tsch)\s?(?:e|i)?\s?n\s?(?:i|y)?\s?(?:e|ye|ie|je)\b", "oswiadczenie"),
        # Blue Card: "blu kard", "blue kard", "bloo card", "blu cart"
        (r"\bbl(?:u|ue|oo|ju|ew)\s?(?:k|c)ar(?:d|t)\w*", "blue card"),
        (r"\bбл(?:ю|у)\s?(?:кард|карт)\w*", "блю кард"),
        # CUKR (the card for Ukrainians): heard as sugar, "цукру", "цукер", "цукор", "cukier"
        (r"\bцук(?:ор|ер|ру|ра|ром|рі|ре)\b", "цукр"),
        (r"\b(?:cuk(?:ier|ru|ra|rze|er)|tsuk(?:r|er|or|ru))\b", "cukr"),
        # PESEL: "pezel", "pessel", "пезель"
        (r"\bpe(?:z|ss|zz)el\w*", "pesel"),
        (r"\bп(?:е|э|є)(?:з|сс)(?:е|э|є)л\w*", "песель"),
    )
)  # fmt: skip


def _without_preamble(text: str) -> str:
    preamble = _PREAMBLE.match(text)
    if preamble and len(_WORD.findall(text, preamble.end())) >= _QUESTION_WORDS_AT_LEAST:
        return text[preamble.end() :]
    return text


def _filler(token: str) -> bool:
    bare = _bare(token)
    return bool(bare) and (bare in _DISCOURSE or _FILLER.match(bare) is not None)


def prepare(text: str) -> str:
    """The text the classifier is trained on and scores: folded, spoken quirks removed."""
    tokens = [token for token in fold(text).split() if not _filler(token)]
    prepared = _without_preamble(" ".join(_join_spelled_letters(tokens)))
    for pattern, canonical in _MISHEARINGS:
        prepared = pattern.sub(canonical, prepared)
    return prepared


# The skeleton: a second, lossy spelling that Cyrillic and chat transliteration share. Ukrainian and
# Russian typed in Latin letters follow no one standard: "pratsiuiu", "pratsyuyu" and "pracuju" are all
# "працюю", "zajavu" and "zaiavu" are "заяву". `knowledge_base.text.to_latin` spells Cyrillic in Latin letters (the common scheme of the
# Ukrainian national romanisation, KMU 2010, and of Russian passport romanisation); the rules below
# then fold the variants chat users write to one form: i/y/j (и, і, ы, й, ї) are one letter, г/х
# written g, h, kh or ch are one, ц written c, ts or tz is one, Polish digraphs (sz, cz, rz, w) take
# their Cyrillic-romanised spelling. Polish, English and Cyrillic text all pass through it, so a
# message in any spelling meets the training examples in every other.
_SKELETON_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"szcz", "shch"), (r"sz", "sh"), (r"cz", "ch"), (r"rz", "zh"), (r"w", "v"),  # Polish
        (r"sch", "shch"),  # German-style щ
        (r"kh|ch(?![aeiouy])", "h"), (r"g", "h"),  # г, х: "hodyn", "godin", "khochu", Polish "ch"
        (r"tz|ts|c(?!h)", "c"),  # ц
        (r"[yj]", "i"),  # и, і, ы, й, ї, я, ю, є
        (r"['’`]", ""),
        (r"(\w)\1+", r"\1"),  # doubled letters: "zajavu", "zajjavu"
    )
)  # fmt: skip


def skeleton(text: str) -> str:
    """The text in the shared lossy spelling: "працюю", "pratsiuiu", "pratsyuyu" -> "praciuiu"."""
    latin = to_latin(text)
    for pattern, replacement in _SKELETON_RULES:
        latin = pattern.sub(replacement, latin)
    return latin
