"""Whether a model's answer is a refusal: "I don't know", in the words a model uses for it.

The prompt tells the model to cite passages as [n] and to say it doesn't know when the context
does not contain the answer (prompt.INSTRUCTIONS). Such an answer is a question the documents
could not answer, like one that found no similar passage, and is recorded as unanswered so that
it reaches the tenant admin's report (conversations/). An answer is a refusal when it cites
nothing and says, near its start, that it does not know or that the context does not say — in
the languages the prompt answers in (the question's). An answer that cites a passage answered
something, whatever caveat it adds ("I don't know the exact date, but [1] says …").
"""

from __future__ import annotations

import re
import unicodedata

CITATION = re.compile(r"\[\d{1,3}\]")
# A refusal says so at once; words this far in belong to an answer that hedges.
LEAD_CHARS = 240

_PHRASES = [
    # English
    r"i (?:do not|don't|dont) know",
    r"i (?:do not|don't|dont) have (?:enough |any |the )?(?:information|details|context|data)",
    r"i (?:cannot|can't|can not|am unable to|am not able to) (?:answer|find|tell|say|determine)",
    r"i (?:could not|couldn't) find",
    r"(?:the )?(?:provided |given )?(?:context|passages|documents?|sources?) (?:does|do) not "
    r"(?:contain|provide|mention|include|say|specify|state|cover)",
    r"(?:is|are) not (?:mentioned|provided|found|included|specified|stated|covered) in the "
    r"(?:provided |given )?(?:context|passages|documents?|sources?)",
    r"no (?:information|mention) (?:about|of|on|regarding)",
    r"there is no information",
    # French
    r"je ne (?:sais|connais) pas",
    r"je n'ai pas (?:d'|assez d'|les |l')information",
    r"je ne peux pas (?:repondre|dire|trouver)",
    r"(?:le contexte|les documents?|les passages?) ne (?:contien|mentionn|precis|fourni|indiqu)",
    r"aucune information",
    # German
    r"ich wei(?:ss|ß) (?:es )?nicht",
    r"wei(?:ss|ß) ich nicht",
    r"keine informationen",
    r"(?:der kontext|die dokumente|das dokument) (?:enthalt|erwahnt|nennt) (?:keine|nicht)",
    r"ich kann (?:das |diese frage )?nicht beantworten",
    # Spanish
    r"no lo se\b",  # not "no se": "no se recomienda" is an answer
    r"no se (?:la respuesta|nada sobre)",
    r"no tengo (?:suficiente |la )?informacion",
    r"no puedo (?:responder|contestar|encontrar)",
    r"(?:el contexto|los documentos?) no (?:contiene|menciona|proporciona|especifica|indica)",
    # Italian
    r"non (?:lo )?so\b",
    r"non ho (?:abbastanza |sufficienti )?informazioni",
    r"non posso rispondere",
    r"(?:il contesto|i documenti) non (?:contiene|contengono|menziona|menzionano|fornisce|specifica)",
    # Portuguese
    r"nao (?:o )?sei\b",
    r"nao tenho (?:informac|dados)",
    r"nao posso responder",
    r"o contexto nao (?:contem|menciona|fornece|especifica)",
    # Dutch
    r"ik weet (?:het )?niet",
    r"weet ik niet",
    r"geen informatie",
]
REFUSAL = re.compile(r"(?:^|[^\w])(?:" + "|".join(_PHRASES) + r")")


def normalise(text: str) -> str:
    """Lower case, accents off, one kind of apostrophe, runs of spaces as one."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = folded.replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(folded.split())


def is_refusal(answer: str, no_answer_message: str = "") -> bool:
    """True when `answer` cites no passage and says, near its start, that it cannot answer."""
    if CITATION.search(answer):
        return False
    text = normalise(answer)
    if not text:
        return False
    if no_answer_message and normalise(no_answer_message) in text:
        return True
    return REFUSAL.search(text[:LEAD_CHARS]) is not None
