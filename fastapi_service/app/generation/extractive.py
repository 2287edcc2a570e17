"""The answer without a language model: the sentences that answer the question, quoted and cited.

The retrieved chunks are split into sentences (paragraph and line breaks first, then pysbd's
rule-based sentence boundaries, so list items and table rows stay apart). Each sentence is scored
against the question with the embedding model that ranked the chunks (cosine, the heading
prepended so a sentence keeps its section's context) plus keyword overlap (the share of the
question's content words, by idf over the candidate sentences, that the sentence contains). The best
few sentences are quoted with their neighbours, in document order, each passage cited `[n]` with
the number of its source in the answer's `sources`. When no sentence reaches
`EXTRACTIVE_MIN_SCORE`, there is no answer: the caller says "I don't know" and records the
question as unanswered, rather than quoting loosely related passages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pysbd
import snowballstemmer
from pysbd.languages import LANGUAGE_CODES

from app.embedding.service import EmbeddingService
from app.languages import text_search_config
from app.retrieval.service import Hit

MAX_ANCHORS = 3  # best sentences quoted (each with its neighbours)
ANCHOR_MARGIN = 0.12  # a further sentence is quoted only if it scores within this of the best
MAX_SENTENCE_CHARS = 600  # a "sentence" longer than this (a run-on table) is cut at a word
KEYWORD_WEIGHT = 0.35  # score = (1 - w) * cosine + w * keyword overlap
WORD = re.compile(r"[^\W_]+(?:['\u2019.][^\W_]+)*", re.UNICODE)
WRAP_SHARE = 0.6  # a line at least this share of the block's longest, not ending a sentence, wraps on
# Words that carry no subject in an English question; the rest are compared by the first five
# letters of their Snowball stems (the stemmer of the chatbot's keyword index, app/languages.py:
# English's for `en`), so "takes"/"take" and "weigh"/"weight" (or "chevaux"/"cheval") meet.
STOP_WORDS = frozenset(
    """a about after all also am an and any are as at be been before being but by can could did do
    does doing for from had has have having how i if in into is it its may me might more most much
    must my no not of on or our out over own same shall should so some such than that the their them
    then there these they this those to too under until up very was we were what when where which
    while who whom why will with would you your yours tell please know get there's what's long many often
    work works""".split()
)


PYSBD_LANGUAGES = frozenset(LANGUAGE_CODES)
SNOWBALL_ALGORITHMS = frozenset(snowballstemmer.algorithms())


@dataclass(frozen=True)
class Sentence:
    hit: int  # index into the hits
    position: int  # index within its chunk
    text: str


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str
    best_score: float
    cited: list[int]  # indexes of the hits quoted


@lru_cache(maxsize=32)
def _segmenter(language: str) -> pysbd.Segmenter:
    """pysbd's rules of the chatbot's language where it has them, else English's."""
    return pysbd.Segmenter(language=language if language in PYSBD_LANGUAGES else "en", clean=False)


@lru_cache(maxsize=32)
def _stemmer(language: str) -> snowballstemmer.stemmer | None:
    """The Snowball stemmer of the configuration of the chatbot's language (PostgreSQL's are named
    after Snowball's algorithms), or None: words compared as written, as `simple` does. The
    language, not the stored `ts_config`: right from a language change on, while the keyword
    index's re-index job is pending (it works on the retrieved text, not on the index)."""
    name = text_search_config(language)
    return snowballstemmer.stemmer(name) if name in SNOWBALL_ALGORITHMS else None


def lines_of(text: str) -> list[str]:
    """Paragraphs, list items and table rows; a PDF's wrapped lines are joined again.

    A line wraps on into the next when it is long (at least `WRAP_SHARE` of the longest line)
    and does not end a sentence; short lines (headings, list items, rows, a paragraph's last
    line) end where they end.
    """
    lines = [" ".join(line.split()) for line in text.splitlines()]
    longest = max((len(line) for line in lines), default=0)
    out: list[str] = []
    joining = False
    for line in lines:
        if not line:
            joining = False
            continue
        if joining:
            out[-1] = f"{out[-1][:-1]}{line}" if out[-1].endswith("-") and line[:1].islower() else f"{out[-1]} {line}"
        else:
            out.append(line)
        joining = len(line) >= WRAP_SHARE * longest and not line.endswith((".", "!", "?", ":", ";"))
    return out


def heading_like(sentence: str) -> bool:
    """A few words without a number or a sentence's end: a heading or label, not an answer."""
    return len(sentence.split()) <= 5 and not any(c.isdigit() for c in sentence) and sentence[-1:] not in ".!?"


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Lines (paragraphs, list items, table rows) first, then sentences within each line."""
    out: list[str] = []
    for line in lines_of(text):
        for sentence in _segmenter(language).segment(line):
            sentence = sentence.strip()
            while len(sentence) > MAX_SENTENCE_CHARS:
                cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
                cut = cut if cut > 0 else MAX_SENTENCE_CHARS
                out.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def terms(text: str, language: str = "en") -> set[str]:
    """Content words by stem prefix. English drops `STOP_WORDS`; other languages keep every word
    (the idf over the candidate sentences weighs their frequent words down)."""
    words = [m.lower() for m in WORD.findall(text)]
    if language == "en":
        words = [w for w in words if w not in STOP_WORDS]
    stemmer = _stemmer(language)
    return {stem[:5] for stem in (stemmer.stemWords(words) if stemmer else words)}


def keyword_overlap(question: set[str], sentences: Sequence[set[str]]) -> np.ndarray:
    """Per sentence: the idf-weighted share of the question's terms it contains (0..1)."""
    if not question or not sentences:
        return np.zeros(len(sentences), dtype=np.float32)
    n = len(sentences)
    weights = {t: math.log(1 + (n + 1) / (1 + sum(t in s for s in sentences))) for t in question}
    total = sum(weights.values())
    return np.array([sum(w for t, w in weights.items() if t in s) / total for s in sentences], dtype=np.float32)


class ExtractiveAnswerer:
    def __init__(self, embedder: EmbeddingService, min_score: float) -> None:
        self.embedder = embedder
        self.min_score = min_score

    async def answer(
        self, question: str, question_vector: np.ndarray, hits: Sequence[Hit], language: str = "en"
    ) -> ExtractiveAnswer | None:
        """The quoted answer, or None when nothing in `hits` answers the question well enough;
        sentences are split and words stemmed in the chatbot's `language`."""
        sentences = self.sentences(hits, language)
        if not sentences:
            return None
        scores = await self.score(question, question_vector, hits, sentences, language)
        scores[[heading_like(s.text) for s in sentences]] = -1.0  # quoted as a neighbour at most
        best = int(np.argmax(scores))
        if float(scores[best]) < self.min_score:
            return None
        order = np.argsort(-scores, kind="stable")
        anchors = [
            int(i) for i in order[:MAX_ANCHORS] if scores[i] >= max(self.min_score, scores[best] - ANCHOR_MARGIN)
        ]
        chosen: set[int] = set()
        for i in anchors:
            chosen.add(i)
            for j in (i - 1, i + 1):  # neighbours: the sentence before and after, in the same chunk
                if 0 <= j < len(sentences) and sentences[j].hit == sentences[i].hit:
                    chosen.add(j)
        return ExtractiveAnswer(
            self.render(hits, sentences, chosen), float(scores[best]), sorted({sentences[i].hit for i in chosen})
        )

    @staticmethod
    def sentences(hits: Sequence[Hit], language: str = "en") -> list[Sentence]:
        """Every sentence of the hits once (overlapping chunks repeat some), chunk by chunk."""
        seen: set[str] = set()
        out: list[Sentence] = []
        for h, hit in enumerate(hits):
            for position, text in enumerate(split_sentences(hit.content, language)):
                key = text.lower()
                if key in seen:
                    continue
                seen.add(key)
                out.append(Sentence(h, position, text))
        return out

    async def score(
        self,
        question: str,
        question_vector: np.ndarray,
        hits: Sequence[Hit],
        sentences: Sequence[Sentence],
        language: str = "en",
    ) -> np.ndarray:
        texts = []
        for s in sentences:
            heading = hits[s.hit].metadata.get("heading")
            texts.append(f"{heading}: {s.text}" if heading and heading not in s.text else s.text)
        vectors = await self.embedder.embed(texts, purpose="query")
        cosine = vectors @ (question_vector / (np.linalg.norm(question_vector) or 1.0))
        keyword = keyword_overlap(terms(question, language), [terms(t, language) for t in texts])
        return np.asarray((1 - KEYWORD_WEIGHT) * cosine + KEYWORD_WEIGHT * keyword, dtype=np.float32)

    @staticmethod
    def render(hits: Sequence[Hit], sentences: Sequence[Sentence], chosen: set[int]) -> str:
        """Passages in document order (sources in rank order, then chunk order, then sentence
        order); consecutive chosen sentences of one chunk form one passage, cited `[n]` with the
        number of that chunk in the answer's sources."""
        source_rank: dict[object, int] = {}
        for hit in hits:
            source_rank.setdefault(hit.source_id, len(source_rank))

        def place(i: int) -> tuple[int, int, int]:
            s = sentences[i]
            return (source_rank[hits[s.hit].source_id], hits[s.hit].ordinal, s.position)

        passages: list[tuple[int, list[str]]] = []
        previous: Sentence | None = None
        for i in sorted(chosen, key=place):
            s = sentences[i]
            if previous is not None and previous.hit == s.hit and previous.position + 1 == s.position:
                passages[-1][1].append(s.text)
            else:
                passages.append((s.hit, [s.text]))
            previous = s
        return "\n\n".join(f"> {' '.join(texts)} [{hit + 1}]" for hit, texts in passages)
