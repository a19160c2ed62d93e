"""The 144 seed articles themselves: complete, well-formed, sourced, and current for 2026."""

from __future__ import annotations

import re
from datetime import date

import pytest

from infoopt.core.languages import LANGUAGES
from knowledge_base.files import (
    ARTICLES_DIR,
    SHORT_ANSWER_LIMIT,
    ArticleDocument,
    is_official_url,
    read_articles,
)
from knowledge_base.reviews import REVIEWS_DIR, Verdict, parse_review_log, review_log
from knowledge_base.topics import catalogue

DOCUMENTS = read_articles(ARTICLES_DIR)
BY_KEY = {(d.topic_id, d.language): d for d in DOCUMENTS}
# The day the content was last reviewed as a whole; no article may claim a later verification.
LAST_REVIEW = date(2026, 12, 2)


def test_every_topic_has_an_article_in_every_language() -> None:
    expected = {(topic_id, language) for topic_id in catalogue().topic_ids for language in LANGUAGES}
    assert set(BY_KEY) == expected
    assert len(DOCUMENTS) == 144


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: f"{d.topic_id}-{d.language}")
def test_article_is_publishable(document: ArticleDocument) -> None:
    assert document.problems() == []
    assert len(document.short_answer) <= SHORT_ANSWER_LIMIT
    assert "http" not in document.short_answer, "the short answer is read aloud: no links"
    log = review_log(document.topic_id)
    assert log is not None
    assert document.verified_on <= log.reviewed_on <= LAST_REVIEW, (
        "verified_on claims no review the log lacks"
    )


# --- review logs: every topic checked claim by claim -------------------------------------------------


@pytest.mark.parametrize("topic_id", catalogue().topic_ids)
def test_every_topic_has_a_claim_by_claim_review_log(topic_id: str) -> None:
    log = review_log(topic_id)
    assert log is not None, f"knowledge_base/reviews/{topic_id}.md is missing"
    assert log.topic_id == topic_id
    assert log.scope, "the log says in a line what the review covered"
    assert len(log.claims) >= 8, "every amount, deadline, office, phone and URL is a claim"
    assert [claim.number for claim in log.claims] == list(range(1, len(log.claims) + 1))
    for claim in log.claims:
        if claim.verdict in (Verdict.CONFIRMED, Verdict.CORRECTED):
            assert claim.source not in ("", "—", "-"), f"claim {claim.number} kept without a source"
    reviewed = {BY_KEY[(topic_id, language)].verified_on for language in LANGUAGES}
    assert reviewed == {log.reviewed_on}, "all four languages were brought in line on the review day"


def test_review_log_parser_refuses_an_unknown_verdict() -> None:
    from knowledge_base.reviews import ReviewLogError

    text = "---\ntopic_id: fees\nreviewed_on: 2026-12-02\n---\nScope: x\n| 1 | claim | src | probably | |\n"
    with pytest.raises(ReviewLogError, match="verdict must be one of"):
        parse_review_log(text)
    assert len(list(REVIEWS_DIR.glob("*.md"))) == len(catalogue().topic_ids)


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


# --- the corrections of the December 2026 legal review, pinned in every language -----------------------


def _pinned(topic_id: str, phrases: dict[str, str]) -> None:
    for language, phrase in phrases.items():
        assert phrase in _all_text(BY_KEY[(topic_id, language)]), (topic_id, language, phrase)


def test_cukr_card_needs_ukr_status_on_the_day_the_card_is_issued_and_family_members_may_apply() -> None:
    _pinned(
        "cukr_card",
        {
            "pl": "ma status UKR w dniu złożenia wniosku i w dniu wydania karty",
            "uk": "має статус UKR у день подання заяви і в день видачі карти",
            "ru": "имеет статус UKR в день подачи заявления и в день выдачи карты",
            "en": "has UKR status on the day of the application and on the day the card is issued",
        },
    )
    _pinned(
        "cukr_card",
        {
            "pl": "członek rodziny obywatela Ukrainy",
            "uk": "член сім'ї громадянина України",
            "ru": "член семьи гражданина Украины",
            "en": "a family member of a citizen of Ukraine",
        },
    )
    assert "Whether a family member" not in _all_text(BY_KEY[("cukr_card", "en")]), "the old hedge is gone"


def test_a_trip_over_30_days_after_filing_can_cost_the_cukr_card() -> None:
    _pinned(
        "cukr_card",
        {
            "pl": "Jeśli po złożeniu wniosku wyjedziesz z Polski na ponad 30 dni, stracisz status UKR",
            "uk": "Якщо після подання заяви ви виїдете з Польщі більш ніж на 30 днів, ви втратите статус UKR",
            "ru": "Если после подачи заявления вы уедете из Польши более чем на 30 дней, вы потеряете статус UKR",
            "en": "If you leave Poland for more than 30 days after applying, you lose UKR status",
        },
    )
    _pinned(
        "travel_abroad",
        {
            "pl": "Wyjazd na ponad 30 dni po złożeniu wniosku może więc kosztować Cię kartę",
            "uk": "виїзд більш ніж на 30 днів після подання заяви може коштувати вам карти",
            "ru": "выезд более чем на 30 дней после подачи заявления может стоить вам карты",
            "en": "a trip of more than 30 days after you apply can cost you the card",
        },
    )


def test_blue_card_job_loss_allows_3_or_6_months_with_no_limit_on_how_often() -> None:
    _pinned(
        "blue_card",
        {
            "pl": "albo 6 miesięcy, gdy masz ją co najmniej 2 lata",
            "uk": "або 6 місяців, коли маєте її щонайменше 2 роки",
            "ru": "или 6 месяцев, когда она у вас не меньше 2 лет",
            "en": "or 6 months, when you have held it for at least 2 years",
        },
    )
    for language, twice in {"pl": "dwa razy", "uk": "двічі", "ru": "дважды", "en": "twice"}.items():
        for topic_id in ("blue_card", "job_loss", "change_employer"):
            assert twice not in _all_text(BY_KEY[(topic_id, language)]), (topic_id, language)


def test_a_blue_card_issued_after_june_2025_only_notifies_a_change_of_employer() -> None:
    _pinned(
        "blue_card",
        {
            "pl": "Zmianę pracodawcy tylko zgłaszasz (zawiadamiasz) wojewodzie",
            "uk": "Про зміну роботодавця ви лише повідомляєте воєводу",
            "ru": "О смене работодателя вы только уведомляете воеводу",
            "en": "You only notify the voivode of a change of employer",
        },
    )
    _pinned(
        "change_employer",
        {
            "pl": "zmianę pracodawcy tylko zgłaszasz wojewodzie",
            "uk": "про зміну роботодавця ви лише повідомляєте воєводу",
            "ru": "о смене работодателя вы только уведомляете воеводу",
            "en": "a change of employer is only notified to the voivode",
        },
    )


def test_all_graduates_of_polish_universities_work_without_a_permit() -> None:
    _pinned(
        "work_without_permit",
        {
            "pl": "od 1.06.2025 zwolnieni są wszyscy absolwenci szkół wyższych w Polsce",
            "uk": "з 1.06.2025 звільнені всі випускники вищих навчальних закладів у Польщі",
            "ru": "с 1.06.2025 освобождены все выпускники высших учебных заведений в Польше",
            "en": "since 1.06.2025 all graduates of higher-education institutions in Poland are exempt",
        },
    )
    _pinned(
        "work_without_permit",
        {
            "pl": "Zwolnienie dla absolwentów polskich szkół średnich zostało zawężone",
            "uk": "Звільнення для випускників польських середніх шкіл звузили",
            "ru": "Освобождение для выпускников польских средних школ сузили",
            "en": "The exemption for graduates of Polish secondary schools was narrowed",
        },
    )


def test_work_without_permit_short_answer_names_cukr_and_blue_card_holders() -> None:
    phrases = {
        "pl": "z kartą CUKR lub Niebieską Kartą UE",
        "uk": "картою CUKR або Блакитною картою ЄС",
        "ru": "картой CUKR или Голубой картой ЕС",
        "en": "a CUKR card or an EU Blue Card",
    }
    for language, phrase in phrases.items():
        assert phrase in BY_KEY[("work_without_permit", language)].short_answer, language


def test_legal_stay_ends_on_suspension_only_at_the_applicants_request() -> None:
    _pinned(
        "stamp_and_legal_stay",
        {
            "pl": "zawieszone na Twój wniosek (na wniosek strony)",
            "uk": "зупинять на ваше прохання (na wniosek strony)",
            "ru": "приостановят по вашей просьбе (na wniosek strony)",
            "en": "suspended at your request (na wniosek strony)",
        },
    )


@pytest.mark.parametrize("topic_id", ["ukraine_special_status", "pesel_ukr"])
def test_the_pesel_ukr_deadline_is_30_days_without_the_draft_hedge(topic_id: str) -> None:
    for language, fourteen in {"pl": "14 dni", "uk": "14 днів", "ru": "14 дней", "en": "14 days"}.items():
        text = _all_text(BY_KEY[(topic_id, language)])
        assert fourteen not in text, (topic_id, language)
        assert "30" in text, (topic_id, language)
    _pinned(
        "pesel_ukr",
        {
            "pl": "masz 30 dni od wjazdu na złożenie wniosku",
            "uk": "маєте 30 днів від в'їзду, щоб подати заяву",
            "ru": "у вас есть 30 дней с момента въезда, чтобы подать заявление",
            "en": "you have 30 days from entry to apply",
        },
    )


def test_the_mos_amending_act_is_not_dated_21_november_2025() -> None:
    for language in LANGUAGES:
        document = BY_KEY[("apply_online_mos", language)]
        text = f"{_all_text(document)}\n{document.legal_basis}"
        assert not re.search(r"21\s*(listopada|листопада|ноября|November)|21\.11\.2025", text), language
    _pinned(
        "apply_online_mos",
        {
            "pl": "nowelizacja ustawy o cudzoziemcach o elektronicznym składaniu wniosków",
            "uk": "поправка до закону про іноземців щодо електронного подання заяв",
            "ru": "поправка к закону об иностранцах об электронной подаче заявлений",
            "en": "the amendment to the Act on Foreigners that introduced electronic filing",
        },
    )


def test_mos_and_change_employer_agree_on_how_a_change_application_is_filed() -> None:
    """No official source says whether it goes through MOS: both articles send the person to INFO.OPT."""
    phrases = {
        "pl": "zapytaj INFO.OPT, jak to zrobić",
        "uk": "запитайте в INFO.OPT, як це зробити",
        "ru": "спросите в INFO.OPT, как это сделать",
        "en": "ask INFO.OPT how to do it",
    }
    _pinned("apply_online_mos", phrases)
    _pinned("change_employer", phrases)


def test_a_single_permit_holder_changing_employer_files_a_change_application() -> None:
    _pinned(
        "change_employer",
        {
            "pl": "urząd od 29.01.2022 r. stosuje wniosek o zmianę zezwolenia z nowym załącznikiem nr 1",
            "uk": "управління з 29.01.2022 застосовує заяву про зміну дозволу з новим додатком № 1",
            "ru": "управление с 29.01.2022 применяет заявление на изменение разрешения с новым приложением № 1",
            "en": "the office has applied the change application with a new annex no. 1 since 29.01.2022",
        },
    )


def test_the_notification_for_ukrainian_workers_is_free() -> None:
    _pinned(
        "ukrainian_work_notification",
        {
            "pl": "Powiadomienie jest bezpłatne.",
            "uk": "Повідомлення безкоштовне.",
            "ru": "Уведомление бесплатное.",
            "en": "The notification is free of charge.",
        },
    )


def test_karta_polaka_applications_go_to_the_foreigners_department() -> None:
    _pinned(
        "citizenship",
        {
            "pl": "wnioski o przyznanie lub przedłużenie samej Karty Polaka składa się w Wydziale Spraw Cudzoziemców",
            "uk": "заяви про надання або продовження самої Карти поляка подають до Відділу у справах іноземців",
            "ru": "заявления о предоставлении или продлении самой Карты поляка подают в Отдел по делам иностранцев",
            "en": "applications to grant or extend the Karta Polaka (Pole's Card) itself are filed at the Foreigners' Department",
        },
    )


def test_points_of_the_ended_project_are_to_be_confirmed_and_karta_polaka_goes_to_przy_rondzie() -> None:
    _pinned(
        "contact_offices",
        {
            "pl": "Do potwierdzenia w INFO.OPT: punkty przy ul. Basztowej 22 i ul. Chłopickiego 4",
            "uk": "Потрібно уточнити в INFO.OPT: пункти на вул. Basztowa 22 і вул. Chłopickiego 4",
            "ru": "пункты на ул. Basztowa 22 и ул. Chłopickiego 4",
            "en": "To be confirmed with INFO.OPT: the points at ul. Basztowa 22 and ul. Chłopickiego 4",
        },
    )
    _pinned(
        "contact_offices",
        {
            "pl": "Karty Polaka składa się w Wydziale Spraw Cudzoziemców MUW, Kraków, ul. Przy Rondzie 6",
            "uk": "Карти поляка (Karta Polaka) подають до Відділу у справах іноземців",
            "ru": "Карты поляка (Karta Polaka) подают в Отдел по делам иностранцев",
            "en": "Applications for the grant or extension of a Karta Polaka are filed at the Foreigners' Department",
        },
    )
    for language in LANGUAGES:
        short = BY_KEY[("contact_offices", language)].short_answer
        assert "Basztow" not in short and "Chłopick" not in short, "only confirmed points in the short answer"


def test_nothing_announces_2026_rules_as_news() -> None:
    """December 2026: what started in 2026 is told as having started, not as coming."""
    future = re.compile(
        r"\b(od|from|з|с) (27 kwietnia|27 April|27 квітня|27 апреля) 2026 (r\. )?(będzie|will|буде|будет)"
    )
    for document in DOCUMENTS:
        assert not future.search(_all_text(document)), (document.topic_id, document.language)
