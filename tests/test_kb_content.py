"""The 144 seed articles themselves: complete, well-formed, sourced, and current for 2026."""

from __future__ import annotations

import re
from datetime import date

import pytest

from knowledge_base.files import (
    ARTICLES_DIR,
    SHORT_ANSWER_LIMIT,
    ArticleDocument,
    is_official_url,
    read_articles,
)
from knowledge_base.topics import LANGUAGES, catalogue

DOCUMENTS = read_articles(ARTICLES_DIR)
BY_KEY = {(d.topic_id, d.language): d for d in DOCUMENTS}


def test_every_topic_has_an_article_in_every_language() -> None:
    expected = {(topic_id, language) for topic_id in catalogue().topic_ids for language in LANGUAGES}
    assert set(BY_KEY) == expected
    assert len(DOCUMENTS) == 144


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: f"{d.topic_id}-{d.language}")
def test_article_is_publishable(document: ArticleDocument) -> None:
    assert document.problems() == []
    assert len(document.short_answer) <= SHORT_ANSWER_LIMIT
    assert "http" not in document.short_answer, "the short answer is read aloud: no links"
    assert document.verified_on <= date(2026, 11, 22)


@pytest.mark.parametrize("topic_id", catalogue().topic_ids)
def test_languages_share_sources_dates_and_legal_basis(topic_id: str) -> None:
    """The four languages state the same facts: same sources, legal basis and validity."""
    master = BY_KEY[(topic_id, "pl")]
    for language in ("uk", "ru", "en"):
        translation = BY_KEY[(topic_id, language)]
        assert set(translation.sources) == set(master.sources), language
        assert translation.legal_basis == master.legal_basis, language
        assert translation.valid_until == master.valid_until, language


def test_official_url_check_rejects_lookalikes() -> None:
    assert is_official_url("https://www.gov.pl/web/udsc")
    assert is_official_url("https://migrant.poznan.uw.gov.pl/pl/faq")
    assert is_official_url("https://infoopt.pl/oplaty/")
    assert not is_official_url("https://gov.pl.example.com/x")
    assert not is_official_url("https://notgov.pl/x")
    assert not is_official_url("https://www.gazetaprawna.pl/x")
    assert not is_official_url("javascript:alert(1)")


def _all_text(document: ArticleDocument) -> str:
    return f"{document.title}\n{document.short_answer}\n{document.body}"


def test_ukrainian_special_regime_articles_expire_with_the_regime() -> None:
    for topic_id in ("ukraine_special_status", "cukr_card", "pesel_ukr"):
        for language in LANGUAGES:
            assert BY_KEY[(topic_id, language)].valid_until is not None, (topic_id, language)


def test_georgia_is_not_listed_as_a_declaration_country() -> None:
    """Georgia left the oświadczenie list on 1.12.2025; the list is Armenia, Belarus, Moldova, Ukraine."""
    text = _all_text(BY_KEY[("work_declaration", "pl")])
    assert "Armeni" in text and "Białoru" in text and "Mołdaw" in text and "Ukrain" in text
    georgia_sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if "Gruzj" in s]
    assert all(re.search(r"(usunięt|nie |już|od 1 grudnia|1\.12\.2025)", s) for s in georgia_sentences), (
        georgia_sentences
    )


def test_card_fee_is_100_zloty_not_the_outdated_50() -> None:
    text = _all_text(BY_KEY[("fees", "pl")])
    assert re.search(r"100\s*zł", text)


def test_work_permit_fees_are_the_amounts_from_december_2025() -> None:
    text = _all_text(BY_KEY[("work_permit_application", "pl")])
    for amount in ("200", "400", "800"):
        assert re.search(rf"{amount}\s*zł", text), amount


def test_mos_is_described_as_mandatory_since_27_april_2026() -> None:
    text = _all_text(BY_KEY[("apply_online_mos", "pl")])
    assert re.search(r"27\s*(kwietnia|\.04\.)\s*2026", text)


def test_cukr_filing_window_is_stated() -> None:
    text = _all_text(BY_KEY[("cukr_card", "pl")])
    assert re.search(r"4\s*(maja|\.05\.)\s*2026", text)
    assert re.search(r"4\s*(marca|\.03\.)\s*2027", text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_article_ends_with_a_way_to_a_person(language: str) -> None:
    for topic_id in catalogue().topic_ids:
        body = BY_KEY[(topic_id, language)].body
        assert "12 210 20 20" in body or "info.opt@muw.pl" in body, (topic_id, language)
