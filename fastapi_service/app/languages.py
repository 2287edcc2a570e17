"""A chatbot's language and the PostgreSQL text-search configuration of its keyword index.

The one place that maps a language code to a configuration (contract/languages.json mirrors it;
tests/engine/test_contract.py checks both). A chatbot's chunks are indexed with its language's
configuration and its queries are parsed with the same one, so "chevaux" finds "cheval" in a
French chatbot. Codes are ISO 639 language codes, lower case (`LANGUAGE_CODE`); a code with a
Snowball stemmer that PostgreSQL ships (the same set in the embedded PostgreSQL 16 and the
Compose image's PostgreSQL 17) gets that stemmer and its stop words, any other well-formed code
gets `simple` (lower-cased words, no stemming, no stop words). Accents are kept as written:
`unaccent` is not in the embedded server (pgserver ships only plpgsql and vector), so no
configuration folds them — the Spanish and German stemmers fold their own (á→a, ä→a), French,
Italian and Portuguese ones do not ("élève" and "eleve" are different words).
"""

from __future__ import annotations

import re

LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
FALLBACK_CONFIG = "simple"
TEXT_SEARCH_CONFIGS: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}


def language_problem(code: str) -> str | None:
    """Why `code` is not a language code the engine accepts, or None."""
    if not LANGUAGE_CODE.fullmatch(code):
        return f"{code!r} is not a lower-case ISO 639 language code such as 'en' or 'fr'"
    return None


def text_search_config(code: str) -> str:
    """The configuration of a (valid) language code: its stemmer's, else `simple`."""
    return TEXT_SEARCH_CONFIGS.get(code, FALLBACK_CONFIG)
