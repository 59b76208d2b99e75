"""Map the words of a prompt to the token positions they occupy in the joint text sequence.

Strategies need this to bias or read attention for one noun ("apples") without knowing how a
family tokenises or where it places each encoder's tokens in the sequence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class WordSpan:
    """One word of a prompt: its characters ``[start, end)`` and its token positions."""

    word: str
    start: int
    end: int
    tokens: tuple[int, ...]


def split_words(prompt: str) -> list[tuple[str, int, int]]:
    """Words (letters and digits, inner apostrophes and hyphens kept) with character spans."""
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(prompt)]


def map_words_to_tokens(
    prompt: str,
    offsets: Sequence[tuple[int, int]],
    token_offset: int = 0,
) -> list[WordSpan]:
    """Assign each token (by its character span from a fast tokenizer) to the words it overlaps.

    ``offsets[i]`` is the character span of token ``i``; special and padding tokens have an empty
    span ``(s, s)`` and belong to no word. ``token_offset`` shifts the indices, for families that
    put several encoders' tokens one after another in the sequence (SD3: CLIP then T5).
    """
    spans = []
    for word, start, end in split_words(prompt):
        tokens = tuple(
            token_offset + index
            for index, (tok_start, tok_end) in enumerate(offsets)
            if tok_end > tok_start and tok_start < end and tok_end > start
        )
        spans.append(WordSpan(word, start, end, tokens))
    return spans


def merge_word_spans(first: list[WordSpan], second: list[WordSpan]) -> list[WordSpan]:
    """Join two mappings of the same prompt (e.g. CLIP and T5 tokens of SD3) word by word."""
    if [w.start for w in first] != [w.start for w in second]:
        raise ValueError("word spans come from different prompts")
    return [WordSpan(a.word, a.start, a.end, a.tokens + b.tokens) for a, b in zip(first, second, strict=True)]


def phrase_tokens(spans: Sequence[WordSpan], phrase: str) -> list[int]:
    """Token positions of every occurrence of ``phrase`` (one or more words, case-insensitive)."""
    wanted = [w.lower() for w, _, _ in split_words(phrase)]
    if not wanted:
        return []
    words = [s.word.lower() for s in spans]
    found: list[int] = []
    for i in range(len(words) - len(wanted) + 1):
        if words[i : i + len(wanted)] == wanted:
            for span in spans[i : i + len(wanted)]:
                found.extend(span.tokens)
    return sorted(set(found))
