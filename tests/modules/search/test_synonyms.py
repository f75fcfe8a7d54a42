"""The thesaurus: a word finds the words that may stand for it, by stem, both ways."""

from __future__ import annotations

from app.modules.search.synonyms import stem, synonyms


def test_a_word_finds_its_group_by_stem_and_the_group_finds_it_back() -> None:
    assert "landfill" in synonyms("dumps")
    assert "dump" in synonyms("landfills")
    assert all(stem(word) != stem("dumps") for word in synonyms("dumps"))


def test_a_word_in_no_group_has_no_synonyms() -> None:
    assert synonyms("electrolyser") == frozenset()
