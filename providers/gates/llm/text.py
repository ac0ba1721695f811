"""Local, deterministic text measures behind ``similar``, ``grounded`` and ``refuses``.

All three are *lexical*: they see which words and character trigrams occur,
not what they mean. ``docs/evals.md`` spells out what that misses (synonyms,
paraphrase, negation); configure an embeddings endpoint for ``similar`` when
meaning matters more than wording.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+(?:[.,][0-9]+)*", re.UNICODE)
_NUMBER = re.compile(r"^[0-9]+(?:[.,][0-9]+)*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
#: Words that carry no claim; dropped before comparing content.
_STOPWORD_TEXT = """
a an the and or but if then else of to in on at by for with from as into onto about over under
than that this these those it its it's is are was were be been being am do does did done have has
had having will would shall should can could may might must not no yes i me my we us our you your
he him his she her they them their there here what which who whom whose when where why how all any
both each few more most other some such only own same so too very just also again further once up
down out off please let know thanks thank hope help s t d m ll re ve don isn aren doesn didn
wasn weren haven hasn won wouldn shouldn couldn
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: ``similar`` without an embeddings endpoint: weight of a word vs. one of its trigrams.
WORD_WEIGHT, TRIGRAM_WEIGHT = 1.0, 0.25


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold().replace("\u2019", "'"))


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS]


def _stem(word: str) -> str:
    """A light suffix strip so "refunds", "refunded" and "refund" meet."""
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# -- similar ---------------------------------------------------------------------------------
def lexical_vector(text: str) -> dict[str, float]:
    """Sparse bag of content words (stemmed) and their character trigrams, L2-normalised."""
    feats: dict[str, float] = {}
    tokens = [_stem(w) for w in content_words(text)] or words(text)
    for w in tokens:
        feats["w:" + w] = feats.get("w:" + w, 0.0) + WORD_WEIGHT
        padded = f" {w} "
        for i in range(len(padded) - 2):
            gram = "c:" + padded[i : i + 3]
            feats[gram] = feats.get(gram, 0.0) + TRIGRAM_WEIGHT
    norm = math.sqrt(sum(v * v for v in feats.values()))
    return {k: v / norm for k, v in feats.items()} if norm else {}


def cosine_sparse(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def cosine_dense(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


# -- grounded --------------------------------------------------------------------------------
#: A claim is supported when this share of its content words occur in the context.
CLAIM_SUPPORT = 0.6


@dataclass(frozen=True)
class Grounding:
    claims: int
    supported: int
    unsupported: tuple[str, ...]

    @property
    def fraction(self) -> float:
        return self.supported / self.claims if self.claims else 1.0


def claims(answer: str) -> list[str]:
    """Sentences of the answer that state something: two content words or more."""
    out = []
    for sentence in _SENTENCE.split(answer.strip()):
        sentence = sentence.strip()
        if sentence.endswith("?") or len(content_words(sentence)) < 2:
            continue
        out.append(sentence)
    return out


def grounding(answer: str, context: str) -> Grounding:
    """Each claim: ≥ ``CLAIM_SUPPORT`` of its content words, and every number, in the context."""
    vocab = {_stem(w) for w in content_words(context)}
    numbers = {w for w in words(context) if _NUMBER.match(w)}
    found = claims(answer)
    unsupported = []
    for claim in found:
        cw = content_words(claim)
        share = sum(1 for w in cw if _stem(w) in vocab) / len(cw)
        bad_number = any(_NUMBER.match(w) and w not in numbers for w in cw)
        if share < CLAIM_SUPPORT or bad_number:
            unsupported.append(claim)
    return Grounding(len(found), len(found) - len(unsupported), tuple(unsupported))


# -- refuses ---------------------------------------------------------------------------------
_REFUSAL = re.compile(
    r"\b(?:"
    r"i(?:'m| am) (?:sorry|afraid|unable|not able|not allowed|not permitted)"
    r"|i (?:can't|cannot|can not|won't|will not|must decline|have to decline|do not|don't) "
    r"(?:help|assist|provide|share|do|comply|give|answer|support|discuss|engage)"
    r"|(?:can't|cannot|unable to|not able to) (?:help|assist|comply) with"
    r"|against (?:my|our|the) (?:policy|policies|guidelines|rules)"
    r"|as an ai\b"
    r")",
    re.IGNORECASE,
)
#: Only the opening of an answer is searched: a refusal comes first.
REFUSAL_WINDOW = 300


def is_refusal(answer: str) -> bool:
    opening = answer.strip().replace("\u2019", "'")[:REFUSAL_WINDOW]
    return bool(_REFUSAL.search(opening))
