"""Case numbers as people type them, made comparable: `WSC-II-S.6151.1234.2026`, "wsc ii s 6151 1234
2026", "WSC–II–S/6151/1234/2026" and Cyrillic look-alike letters all become the same key."""

from __future__ import annotations

import re
import unicodedata

# Cyrillic letters that look like Latin ones (people switch keyboards mid-number).
_LOOK_ALIKES = str.maketrans(
    {
        "А": "A",
        "В": "B",
        "С": "C",
        "Е": "E",
        "Н": "H",
        "І": "I",
        "Ї": "I",
        "К": "K",
        "М": "M",
        "О": "O",
        "Р": "P",
        "Т": "T",
        "Х": "X",
        "У": "Y",
        "Ѕ": "S",
        "Ј": "J",
    }
)
_TOKENS = re.compile(r"[A-Z]+|\d+")


def case_key(typed: str) -> str | None:
    """The comparable form of a case number (None when nothing like one is there): its letter and digit
    groups, upper case, Latin letters, numbers without leading zeros, joined by dots."""
    text = unicodedata.normalize("NFKC", typed).upper().translate(_LOOK_ALIKES)
    tokens = [str(int(token)) if token.isdigit() else token for token in _TOKENS.findall(text)]
    if len(tokens) < 3 or not any(token.isdigit() for token in tokens):
        return None
    return ".".join(tokens)


# A case number inside a sentence: the office's letters, a department in Roman numerals, a letter, then
# the register, the serial and the year (`WSC-II-S.6151.1234.2026`), with any separators or none.
_SEP = r"[\s.\-–—/_,]*"
_SEP_ONE = r"[\s.\-–—/_,]+"  # the letter groups are whole tokens: "case is 6151…" is not one
_IN_TEXT = re.compile(
    rf"\b([A-Z]{{2,4}}){_SEP_ONE}([IVX]{{1,4}}){_SEP_ONE}([A-Z]){_SEP}(\d{{4}}){_SEP}(\d{{1,6}}){_SEP}(\d{{4}})\b"
)
# The same digits without the letters ("6151.1234.2026", "6151 1234 2026"), as the phone's keypad or a
# hurried person gives them.
_DIGITS_IN_TEXT = re.compile(rf"(?<!\d)(\d{{4}}){_SEP}(\d{{1,6}}){_SEP}(20\d\d)(?!\d)")


def find_case_number(text: str) -> str | None:
    """The case number a message holds, as it was written (letters or digits only), or None."""
    folded = unicodedata.normalize("NFKC", text).upper().translate(_LOOK_ALIKES)
    match = _IN_TEXT.search(folded) or _DIGITS_IN_TEXT.search(folded)
    return match.group(0) if match else None


def case_digits(number: str) -> str:
    """The digits of a case number in order ("WSC-II-S.6151.1234.2026" → "615112342026"): what a caller
    keys in on the phone, and how a number given without its letters is matched."""
    return "".join(char for char in unicodedata.normalize("NFKC", number) if char.isdigit())


# Number words of the four languages, by value. Inflected forms people say in a case number or a date
# ("dwie", "одна", "тисячі") are listed beside the basic ones.
_UNITS = {
    0: "zero нуль ноль zero oh",
    1: "jeden jedna jedno один одна одно одну one",
    2: "dwa dwie два дві две two",
    3: "trzy три три three",
    4: "cztery чотири четыре four",
    5: "pięć п'ять пʼять пять five",
    6: "sześć шість шесть six",
    7: "siedem сім семь seven",
    8: "osiem вісім восемь eight",
    9: "dziewięć дев'ять девʼять девять nine",
}
_TEENS = {
    10: "dziesięć десять ten",
    11: "jedenaście одинадцять одиннадцать eleven",
    12: "dwanaście дванадцять двенадцать twelve",
    13: "trzynaście тринадцять тринадцать thirteen",
    14: "czternaście чотирнадцять четырнадцать fourteen",
    15: "piętnaście п'ятнадцять пятнадцать fifteen",
    16: "szesnaście шістнадцять шестнадцать sixteen",
    17: "siedemnaście сімнадцять семнадцать seventeen",
    18: "osiemnaście вісімнадцять восемнадцать eighteen",
    19: "dziewiętnaście дев'ятнадцять девятнадцать nineteen",
}
_TENS = {
    20: "dwadzieścia двадцять двадцать twenty",
    30: "trzydzieści тридцять тридцать thirty",
    40: "czterdzieści сорок forty",
    50: "pięćdziesiąt п'ятдесят пятьдесят fifty",
    60: "sześćdziesiąt шістдесят шестьдесят sixty",
    70: "siedemdziesiąt сімдесят семьдесят seventy",
    80: "osiemdziesiąt вісімдесят восемьдесят eighty",
    90: "dziewięćdziesiąt дев'яносто девяносто ninety",
}
_HUNDREDS = {
    100: "sto сто",
    200: "dwieście двісті двести",
    300: "trzysta триста",
    400: "czterysta чотириста четыреста",
    500: "pięćset п'ятсот пятьсот",
    600: "sześćset шістсот шестьсот",
    700: "siedemset сімсот семьсот",
    800: "osiemset вісімсот восемьсот",
    900: "dziewięćset дев'ятсот девятьсот",
}
_THOUSAND = frozenset(
    ["tysiąc", "tysiące", "tysięcy", "тисяча", "тисячі", "тисяч", "тысяча", "тысячи", "тысяч", "thousand"]
)
_WORD_VALUES = {
    word.replace("ʼ", "'"): value
    for table in (_UNITS, _TEENS, _TENS, _HUNDREDS)
    for value, words in table.items()
    for word in words.split()
}
_WORDS = re.compile(r"[\w'ʼ’]+")


def spoken_digits(text: str) -> str:
    """The digits of numbers said in words, in order: "sześć tysięcy sto pięćdziesiąt jeden" → "6151",
    "шість один п'ять один" → "6151", "two thousand twenty six" → "2026". Digits already written stay;
    other words are skipped."""
    out: list[str] = []
    group = 0  # the number being said, below a thousand-multiple boundary
    open_group = False

    def flush() -> None:
        nonlocal group, open_group
        if open_group:
            out.append(str(group))
        group, open_group = 0, False

    for raw in _WORDS.findall(unicodedata.normalize("NFKC", text).lower().replace("’", "'")):
        word = raw.replace("ʼ", "'")
        if word.isdigit():
            flush()
            out.append(word)
            continue
        if word == "hundred":  # English multiplies the unit before it: "one hundred twenty"
            unit = group % 10
            group, open_group = group - unit + (unit or 1) * 100, True
            continue
        if word in _THOUSAND:
            if group >= 1000:
                flush()
            group, open_group = (group or 1) * 1000, True
            continue
        value = _WORD_VALUES.get(word)
        if value is None:
            continue
        # A new number starts where this word cannot continue the one being said ("sześć jeden": two).
        place = 100 if value >= 100 else 10 if value >= 10 else 1
        below = group % (1000 if place == 100 else 100 if place == 10 else 10)
        if open_group and (below or (place < 100 and group % 100 and value >= 10) or value == 0):
            flush()
        group += value
        open_group = True
        if value == 0:
            flush()
    flush()
    return "".join(out)
