"""Which model answers count as "I don't know" (app/generation/refusal.py)."""

import pytest

from app.generation.refusal import is_refusal

REFUSALS = [
    "I don't know.",
    "I do not know the answer to that based on the provided context.",
    "I\u2019m sorry, I don\u2019t have enough information to answer that.",  # curly apostrophes
    "The provided context does not mention opening hours.",
    "Opening hours are not mentioned in the provided documents.",
    "Sorry, I cannot answer this question from the context.",
    "I couldn't find anything about parking.",
    "Je ne sais pas.",
    "Le contexte ne précise pas les horaires d'ouverture.",
    "Je n\u2019ai pas d\u2019information à ce sujet.",
    "Ich weiß es nicht.",
    "Dazu habe ich keine Informationen.",
    "No lo sé.",
    "No tengo información sobre eso.",
    "Non lo so.",
    "Il contesto non menziona gli orari.",
    "Não sei.",
    "Ik weet het niet.",
    "Daarover heb ik geen informatie.",
]
ANSWERS = [
    "You can return products within 30 days [1].",
    "I don't know the exact date, but the handbook says returns take 30 days [2].",  # cites: answered
    "Returns are accepted within 30 days of purchase.",
    "No se recomienda lavar el producto a más de 30 grados.",  # Spanish "no se" is not "no sé"
    "Non sono ammessi animali nel negozio.",
    "Le contexte indique que les retours sont acceptés sous 30 jours.",
    "",
    "Returns are accepted within 30 days. " * 10 + "I don't know about exchanges.",  # hedges late
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_answers(text):
    assert not is_refusal(text)


def test_the_configured_no_answer_message_is_a_refusal_wherever_it_appears():
    message = "Sorry — that is not something our documents cover."
    assert not is_refusal("Well. " * 60 + message)
    assert is_refusal("Well. " * 60 + message, no_answer_message=message)
