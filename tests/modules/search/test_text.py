from __future__ import annotations

from app.modules.search.text import keywords, normalise, question_parts, sentences


def test_keywords_drop_stopwords_and_repeats_and_stem_plurals() -> None:
    assert keywords("What are the main climate initiatives and initiatives?") == ["climate", "initiative"]
    assert normalise("Policies") == "policy" and normalise("grass") == "grass"


def test_questions_asking_several_things_are_split_into_parts() -> None:
    assert question_parts("What are the targets? How is it funded?") == [
        "What are the targets",
        "How is it funded",
    ]
    assert question_parts("What are wind targets and how are they funded?") == [
        "What are wind targets",
        "how are they funded",
    ]
    assert question_parts("Heat pumps and insulation grants?") == ["Heat pumps and insulation grants"]


def test_sentences_are_split_on_sentence_ends() -> None:
    assert sentences("One thing. Two things!\nThree") == ["One thing.", "Two things!", "Three"]
