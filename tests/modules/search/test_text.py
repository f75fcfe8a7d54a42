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


def test_a_comparison_asks_for_each_of_the_things_it_compares() -> None:
    assert question_parts("Which is larger, the solar target or the offshore wind target?") == [
        "the solar target",
        "the offshore wind target",
    ]
    assert question_parts("Compare the transition fund with the first green bond.") == [
        "the transition fund",
        "the first green bond",
    ]
    assert question_parts("How do the heat pump grant and the apprenticeship payment compare?") == [
        "the heat pump grant",
        "the apprenticeship payment",
    ]


def test_one_question_about_two_things_is_asked_of_each() -> None:
    assert question_parts("What grants exist for heat pumps and for insulation?") == [
        "What grants exist for heat pumps",
        "What grants exist for insulation",
    ]


def test_past_forms_a_light_stem_cannot_bring_back_are_mapped() -> None:
    assert keywords("How many programmes are led by the agency?") == ["programme", "lead", "agency"]


def test_a_stopword_is_dropped_before_its_stem_can_look_like_a_word() -> None:
    assert keywords("How many programmes does the Treasury lead?") == ["programme", "treasury", "lead"]


def test_sentences_are_split_on_sentence_ends() -> None:
    assert sentences("One thing. Two things!\nThree") == ["One thing.", "Two things!", "Three"]
