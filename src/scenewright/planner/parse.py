"""Rules parser: an English request to objects, counts, attributes, relations and setting.

No model and no network: a tokenizer that matches known phrases (relations, anchors, count
phrases) longest first, then a small recursive-descent reader of noun phrases joined by
separators and relations. Plurals go through ``inflect`` so that no hand-made plural list is
needed. Anything the reader has to guess (a vague count, a capped one) becomes a warning.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from scenewright.errors import InvalidInputError
from scenewright.planner.lexicon import (
    ADJECTIVES,
    ANCHOR_PHRASES,
    COLOR_MODIFIERS,
    COLORS,
    COUNT_PHRASES,
    DEPTH_PHRASES,
    DETERMINERS,
    ENGLISH_FUNCTION_WORDS,
    FILLER,
    FOREIGN_FUNCTION_WORDS,
    MEDIUM_NOUNS,
    MULTIWORD_NOUNS,
    PLACE_NOUNS,
    PLACE_PREPOSITIONS,
    PLURALIA_TANTUM,
    RELATION_PHRASES,
    SCALES,
    SEPARATOR_PHRASES,
    SEPARATORS,
    STYLE_PHRASES,
    TENS,
    UNITS,
    VAGUE_COUNTS,
)
from scenewright.planner.plan import MAX_COUNT, MAX_OBJECTS, MAX_PROMPT_CHARS, PLACEHOLDER
from scenewright.planner.scene_commands import COMMAND_WORDS, without_command

if TYPE_CHECKING:
    import inflect

_EXAMPLE = 'e.g. "three red apples left of a blue vase, at night"'
# Styles that can only be a style; the others ("painting", "sketch") count only where a style
# stands: after "in"/"as", before "style", or as a clause of their own.
_AMBIGUOUS_STYLES = frozenset(
    {"painting", "drawing", "sketch", "illustration", "render", "comic", "realistic", "cinematic"}
)


@dataclass
class ObjectSpec:
    """One object as the prompt states it."""

    name: str
    count: int
    attributes: list[str] = field(default_factory=list)
    anchor: str | None = None


@dataclass
class Scene:
    """What the parser read: objects, relations between them (by index) and the setting."""

    objects: list[ObjectSpec]
    relations: list[tuple[int, str, int]]
    background: str | None
    warnings: list[str]


@dataclass(frozen=True)
class _Tok:
    kind: str  # word, num, count, vague, det, rel, anchor, sep, filler, of
    text: str
    value: int | str | None = None


@lru_cache(maxsize=1)
def _inflect() -> inflect.engine:
    """inflect's engine, built on first use (its import and set-up take about a second)."""
    import inflect

    return inflect.engine()


@lru_cache(maxsize=4096)
def singular(word: str, plural_expected: bool = False) -> str:
    """Singular of a noun via inflect. Unless a count above one says the word is plural, guard
    against inflect's slips on singular words ending in s ("bus" -> "bu", "iris" -> "iri")."""
    if word in PLURALIA_TANTUM or len(word) < 3:
        return word
    if not plural_expected and word.endswith(("ss", "us", "is", "ics", "as")):
        return word
    result = _inflect().singular_noun(word)
    return result if isinstance(result, str) and result else word


# "no cats", "a circle without a square": a negated object is not an object to draw. The word must
# be followed directly by another word, so "no, make it three" (an answer) is not caught.
_NEGATION = re.compile(r"\b(?:no|not|without|never|except|none of|neither)\s+[^\W\d_]+", re.IGNORECASE)

# "-3 circles" and "2.5 circles" were read as 3 and 5: a count is a whole, positive number.
_NEGATIVE_NUMBER = re.compile(r"(?:^|(?<=\s))-\s*\d+")
_DECIMAL_NUMBER = re.compile(r"\b\d+\.\d+\b")
# "1e9 circles" was read as two circles with the attribute "1e9".
_EXPONENT_NUMBER = re.compile(r"\b\d+(?:\.\d+)?e[+-]?\d+\b", re.IGNORECASE)
# "../../etc/passwd" became an object "etc passwd", "circle/square" one called "circle square".
_PATH_WORD = re.compile(r"\S*[/\\]\S*")


def check_prompt_text(prompt: str) -> str:
    """What every planner needs: text, not too long, no control characters; whitespace collapsed."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInputError("prompt", "is empty", f"describe the scene, {_EXAMPLE}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInputError(
            "prompt",
            f"is {len(prompt)} characters long, more than the {MAX_PROMPT_CHARS} the planner reads",
            "shorten it to the objects, their counts, colours and positions",
        )
    text = " ".join(prompt.split())
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvalidInputError(
            "prompt", "contains control characters (e.g. terminal colour codes)", f"remove them, {_EXAMPLE}"
        )
    hidden = next((ch for ch in text if unicodedata.category(ch) in ("Cf", "Zl", "Zp")), None)
    if hidden is not None:  # U+202E turns text around on screen, U+200B splits a word unseen
        raise InvalidInputError(
            "prompt",
            f"contains the invisible or direction-changing character U+{ord(hidden):04X}",
            f"remove it, {_EXAMPLE}",
        )
    return text


def check_prompt(prompt: str) -> str:
    """The prompt as the rules planner reads it, or an :class:`InvalidInputError` saying what it
    cannot read (another language, a negation, a count that is not a whole positive number)."""
    text = check_prompt_text(prompt)
    letters = [ch for ch in text if ch.isalpha()]
    latin = [ch for ch in letters if "LATIN" in unicodedata.name(ch, "")]
    if letters and len(latin) < 0.6 * len(letters):
        raise InvalidInputError(
            "prompt",
            "is not in English (the rules planner reads English only)",
            f"write it in English, {_EXAMPLE}, or use --planner llm",
        )
    not_words = _PATH_WORD.search(text) or PLACEHOLDER.search(text)
    if not_words:
        raise InvalidInputError(
            "prompt",
            f"has {not_words.group(0)!r}, which is a path or a format placeholder, not the name of a thing",
            f"name the objects in words, {_EXAMPLE}",
        )
    odd_count = _NEGATIVE_NUMBER.search(text) or _DECIMAL_NUMBER.search(text) or _EXPONENT_NUMBER.search(text)
    if odd_count:
        raise InvalidInputError(
            "prompt",
            f"has {odd_count.group(0).strip()!r}, which is not a count of things",
            "use a whole number from 1 to 12, e.g. 'three circles' or '3 circles'",
        )
    negation = _NEGATION.search(text)
    if negation:
        raise InvalidInputError(
            "prompt",
            f"asks for something not to be drawn ({negation.group(0)!r}); the planner draws what is named",
            "name only what should be in the image (with a real model, --negative-prompt steers away)",
        )
    words = re.findall(r"[^\W\d_]+", text.lower())
    # "rouges", "bleus": plurals of listed words count too (the list holds the singular forms).
    foreign = sum(w in FOREIGN_FUNCTION_WORDS or w.removesuffix("s") in FOREIGN_FUNCTION_WORDS for w in words)
    english = sum(w in ENGLISH_FUNCTION_WORDS for w in words)
    if foreign >= 2 and foreign > 2 * english:
        raise InvalidInputError(
            "prompt",
            "does not look like English (the rules planner reads English only)",
            f"write it in English, {_EXAMPLE}, or use --planner llm",
        )
    return text


def _phrase_table() -> tuple[dict[tuple[str, ...], _Tok], int]:
    table: dict[tuple[str, ...], _Tok] = {}
    for phrase, rel in RELATION_PHRASES.items():
        table[tuple(phrase.split())] = _Tok("rel", phrase, rel)
    for phrase, side in ANCHOR_PHRASES.items():
        table[tuple(phrase.split())] = _Tok("anchor", phrase, side)
    for phrase, n in COUNT_PHRASES.items():
        table[tuple(phrase.split())] = _Tok("count", phrase, n)
    for phrase, n in VAGUE_COUNTS.items():
        table[tuple(phrase.split())] = _Tok("vague", phrase, n)
    for phrase in SEPARATOR_PHRASES:
        table[tuple(phrase.split())] = _Tok("sep", phrase)
    return table, max(len(k) for k in table)


_PHRASES, _MAX_PHRASE = _phrase_table()
_NUMBER_WORDS = set(UNITS) | set(TENS) | set(SCALES)


def _words(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)
    out: list[str] = []
    for tok in re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[,;.:!?]", text):
        if "-" in tok and all(part in _NUMBER_WORDS for part in tok.split("-")):
            out.extend(tok.split("-"))  # "twenty-five"
        elif tok.endswith("'s"):
            out.append(tok[:-2])
        else:
            out.append(tok)
    return out


# "draw a red circle", "please make two squares", "I want to see a star": the request around the
# scene, not objects in it (they were planned as objects named "draw" and "please make").
_REQUEST_WORDS = frozenset(
    [
        "please",
        "draw",
        "make",
        "create",
        "show",
        "paint",
        "render",
        "generate",
        "produce",
        "sketch",
        "depict",
        "give",
        "me",
        "us",
        "i",
        "we",
        "want",
        "need",
        "would",
        "like",
        "can",
        "could",
        "you",
        "see",
    ]
)


def _strip_medium(words: list[str]) -> tuple[list[str], str | None]:
    """Drop an opening "a photo of" / "a watercolor painting of"; return the style it names."""
    i = 0
    while i < len(words) and (
        words[i] in ("there", "is", "are", "here")
        or words[i] in _REQUEST_WORDS
        or (words[i] == "to" and i > 0 and words[i - 1] in _REQUEST_WORDS)  # "I want to see"
    ):
        i += 1
    j = i + 1 if i < len(words) and words[i] in ("a", "an", "the") else i
    for k in range(min(len(words) - 1, j + 4), j, -1):
        if words[k] != "of":
            continue
        head = words[j:k]
        last = head[-1]
        if last in MEDIUM_NOUNS or " ".join(head) in STYLE_PHRASES or last in STYLE_PHRASES:
            style = " ".join(head)
            return words[k + 1 :], (None if style in MEDIUM_NOUNS else style)
    return words[i:], None


def _take_setting(words: list[str]) -> tuple[list[str], list[str]]:
    """Remove setting clauses ("in a dark forest", "at night"); return the rest and the clauses."""
    out: list[str] = []
    found: list[str] = []
    i = 0
    stop = (
        DETERMINERS
        | SEPARATORS
        | set(PLACE_PREPOSITIONS)
        | _NUMBER_WORDS
        | {"of", "left", "right", "top", "bottom"}
    )
    while i < len(words):
        if words[i] in PLACE_PREPOSITIONS:
            j = i + 1
            if j < len(words) and words[j] in ("a", "an", "the"):
                j += 1
            end = None
            for extra in range(3):  # up to two modifiers before the place noun
                k = j + extra
                if k > len(words) or any(w in stop for w in words[j:k]):
                    break
                two = " ".join(words[k : k + 2])
                if len(words) > k + 1 and two in PLACE_NOUNS:
                    end = k + 2
                elif k < len(words) and (words[k] in PLACE_NOUNS or (words[k] == "background" and extra > 0)):
                    end = k + 1
                if end is not None:
                    break
            if end is not None:
                found.append(" ".join(words[i:end]))
                i = end
                continue
        out.append(words[i])
        i += 1
    return out, found


def _take_style(words: list[str]) -> tuple[list[str], list[str]]:
    """Remove style phrases ("watercolor", "in the style of van gogh"); return rest and styles."""
    out: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(words):
        if words[i : i + 4] == ["in", "the", "style", "of"]:
            j = i + 4
            while j < len(words) and words[j] not in SEPARATORS:
                j += 1
            found.append(" ".join(words[i:j]))
            i = j
            continue
        match = None
        for length in (3, 2, 1):
            phrase = " ".join(words[i : i + length])
            if len(words[i : i + length]) == length and phrase in STYLE_PHRASES:
                match = (phrase, i + length)
                break
        if match is not None:
            phrase, end = match
            before = out[-1] if out else ","
            after = words[end] if end < len(words) else ","
            lead = before in ("in", "as", "a", "an", ",", ";", ".") or before in SEPARATORS
            standalone = lead and after in SEPARATORS | {"style", ",", "."}
            if phrase not in _AMBIGUOUS_STYLES or after == "style" or before in ("in", "as") or standalone:
                while out and out[-1] in ("in", "as", "a", "an"):
                    out.pop()
                if after == "style":
                    end += 1
                found.append(phrase)
                i = end
                continue
        out.append(words[i])
        i += 1
    return out, found


def _tokens(words: list[str]) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(words):
        matched = None
        for length in range(min(_MAX_PHRASE, len(words) - i), 1, -1):
            hit = _PHRASES.get(tuple(words[i : i + length]))
            if hit is not None:
                matched = (hit, length)
                break
        if matched is None and (words[i],) in _PHRASES:
            matched = (_PHRASES[(words[i],)], 1)
        if matched is not None:
            toks.append(matched[0])
            i += matched[1]
            continue
        w = words[i]
        if w.isdigit():
            toks.append(_Tok("num", w, int(w[:9])))
        elif w in _NUMBER_WORDS:
            toks.append(_Tok("num", w))
        elif w in SEPARATORS:
            toks.append(_Tok("sep", w))
        elif w in DETERMINERS:
            toks.append(_Tok("det", w))
        elif w == "of":
            toks.append(_Tok("of", w))
        elif w in FILLER or w in ("!", "?", ":"):
            toks.append(_Tok("filler", w))
        else:
            toks.append(_Tok("word", w))
        i += 1
    return toks


def _number(toks: list[_Tok], i: int, scale_ok: bool) -> tuple[int | None, int]:
    """Read "5", "twenty five", "five hundred", "a hundred" starting at ``i``."""
    total, current, seen = 0, 0, False
    while i < len(toks) and toks[i].kind == "num":
        t = toks[i]
        if isinstance(t.value, int):
            if seen:
                break
            current, seen = t.value, True
        elif t.text in UNITS:
            current += UNITS[t.text]
            seen = True
        elif t.text in TENS:
            current += TENS[t.text]
            seen = True
        else:  # a scale word
            current = max(current, 1 if (seen or scale_ok) else 0) * SCALES[t.text]
            if current == 0:
                break
            total += current
            current, seen = 0, True
        i += 1
    if not seen:
        return None, i
    return total + current, i


_PRONOUNS = frozenset({"it", "them"})
# Colour words that are also nouns: "an orange" alone is the fruit, not an elided noun.
_COLOR_NOUNS = frozenset(
    {"orange", "lime", "gold", "silver", "cream", "olive", "amber", "navy", "tan", "lavender"}
)
# Nouns that end like participles; other words ending in -ing/-ed after a noun are verbs.
_ING_ED_NOUNS = frozenset(
    {"string", "building", "painting", "ceiling", "pudding", "swing", "earring", "clothing", "sling",
     "wedding", "stocking", "dumpling", "seedling", "duckling", "sibling"}
)  # fmt: skip


def _looks_like_verb(word: str) -> bool:
    """A participle after the noun ("riding", "parked"), not a noun such as "bed" or "ring"."""
    return len(word) > 4 and word.endswith(("ing", "ed")) and word not in _ING_ED_NOUNS | ADJECTIVES


@dataclass
class _NP:
    name: str
    count: int
    attributes: list[str]
    definite: bool
    stated: str  # how the count was stated, for warnings
    vague: bool
    elided: bool = False  # "a red, a green and a blue ball": the noun comes later


def _noun_phrase(toks: list[_Tok], i: int) -> tuple[_NP | None, int]:
    """A noun phrase at ``i``: [determiner | count] adjectives noun. Returns it and the next index."""
    start = i
    count: int | None = None
    vague = False
    article = ""
    stated = ""
    if i < len(toks) and toks[i].kind in ("count", "vague"):
        count = int(toks[i].value or 1)
        vague = toks[i].kind == "vague"
        stated = toks[i].text
        i += 1
    elif i < len(toks) and toks[i].kind == "det":
        article = toks[i].text
        i += 1
    number, j = _number(toks, i, scale_ok=article in ("a", "an"))
    if number is not None:
        stated = " ".join(t.text for t in toks[i:j])
        count, i = number, j
        if i < len(toks) and toks[i].kind == "count" and toks[i].text in ("dozen",):
            count *= 12
            i += 1
    if count is not None and i < len(toks) and toks[i].kind in ("count", "vague", "num"):
        # "a dozen dozen", "3 2 circles": the first count was once dropped without a word.
        both = " ".join(t.text for t in toks[start : i + 1])
        raise InvalidInputError(
            "prompt", f"has {both!r}, two counts in a row", "give one count, e.g. 'twelve circles'"
        )
    if i < len(toks) and toks[i].kind == "of":  # "three of the apples", "a pair of the"
        i += 1
        if i < len(toks) and toks[i].kind == "det":
            i += 1
    words: list[str] = []
    while i < len(toks) and toks[i].kind == "word":
        word = toks[i].text
        after = toks[i + 1].kind if i + 1 < len(toks) else "end"
        if any(w not in ADJECTIVES for w in words) and _looks_like_verb(word) and after not in ("word", "of"):
            i += 1  # a verb after the noun ("a man riding a horse", "a car parked next to")
            break
        words.append(word)
        i += 1
        if (
            i + 1 < len(toks)
            and toks[i].text == "and"
            and words[-1] in ADJECTIVES
            and toks[i + 1].kind == "word"
            and toks[i + 1].text in ADJECTIVES
        ):
            words.append("and")
            i += 1
    if not words:
        return None, max(i, start + 1)
    noun_len = 1
    for length in (3, 2):
        if len(words) >= length:
            tail = words[-length:]
            if (
                " ".join([*tail[:-1], singular(tail[-1], count is not None and count > 1)]) in MULTIWORD_NOUNS
                or " ".join(tail) in MULTIWORD_NOUNS
            ):
                noun_len = length
                break
    elided = (
        len(words) == 1
        and words[0] in COLORS - _COLOR_NOUNS
        and i < len(toks)
        and toks[i].text in (",", "and")
    )
    noun, adjectives = words[-noun_len:], words[:-noun_len]
    if elided:
        noun, adjectives = [], words
    last = noun[-1] if noun else ""
    plural = bool(last) and singular(last) != last
    if count is None:
        if article in ("a", "an", "the", "this", "that") or not plural:
            count = 1
        else:
            count, vague, stated = 2, True, last
    if stated in ("a pair of", "pair of") and (last in PLURALIA_TANTUM or last == "glasses"):
        count = 1  # a pair of scissors is one object
    if (article not in ("a", "an") or count > 1) and noun:  # "a million circles": circle
        noun = [*noun[:-1], singular(last, count > 1)]
    name = " ".join(noun)
    if noun and i + 1 < len(toks) and toks[i].kind == "of" and toks[i + 1].kind == "word":
        j = i + 1  # "a bowl of fruit", "a glass of wine": one object
        while j < len(toks) and toks[j].kind == "word":
            j += 1
        name = f"{name} of {' '.join(t.text for t in toks[i + 1 : j])}"
        i = j
    np = _NP(name, count, _group_attributes(adjectives), article == "the", stated, vague, elided)
    return np, i


def _group_attributes(words: list[str]) -> list[str]:
    """Join "light blue" and "black and white" into one attribute each."""
    out: list[str] = []
    k = 0
    while k < len(words):
        w = words[k]
        if w in COLOR_MODIFIERS and k + 1 < len(words) and words[k + 1] in COLORS:
            out.append(f"{w} {words[k + 1]}")
            k += 2
            continue
        if w == "and" and out and k + 1 < len(words):
            out[-1] = f"{out[-1]} and {words[k + 1]}"
            k += 2
            continue
        if w not in ("very", "of"):
            out.append(w)
        k += 1
    return out


def parse(prompt: str) -> Scene:
    """Read a request into a :class:`Scene`; raises :class:`InvalidInputError` for unusable text."""
    text = without_command(check_prompt(prompt))  # "start over with ...": the request alone
    warnings: list[str] = []
    # "please" anywhere is politeness ("a heart, please"), never a noun or an adjective
    words, medium_style = _strip_medium([w for w in _words(text) if w != "please"])
    words, settings = _take_setting(words)
    words, styles = _take_style(words)
    if medium_style:
        styles.insert(0, medium_style)
    toks = _tokens(words)

    objects: list[ObjectSpec] = []
    stated: list[tuple[str, bool]] = []
    relations: list[tuple[int, str, int]] = []

    elided: set[int] = set()

    def add(np: _NP) -> int:
        if np.elided:
            elided.add(len(objects))
        elif np.definite and np.stated == "":
            for index in range(len(objects) - 1, -1, -1):
                obj = objects[index]
                if obj.name == np.name and set(np.attributes) <= set(obj.attributes):
                    return index
        objects.append(ObjectSpec(np.name, np.count, np.attributes))
        stated.append((np.stated, np.vague))
        return len(objects) - 1

    subject: int | None = None
    pending_anchor: str | None = None
    pending_relation: tuple[str, list[int]] | None = None
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "sep":
            subject = None
            i += 1
        elif t.kind == "anchor":
            if subject is not None:
                objects[subject].anchor = str(t.value)
            else:
                pending_anchor = str(t.value)
            i += 1
        elif t.kind == "rel":
            rel = str(t.value)
            if t.text in DEPTH_PHRASES:
                warnings.append(f"'{t.text}' is a depth relation; a 2-D layout draws it as 'next to'")
            i += 1
            targets: list[int] = []
            if i < len(toks) and toks[i].text in _PRONOUNS:
                # "a dog below it": the latest object mentioned other than the subject
                targets = [k for k in range(len(objects) - 1, -1, -1) if k != subject][:1]
                i += 1
            while not targets and i < len(toks) and toks[i].kind == "filler":
                i += 1
            first, i = (None, i) if targets else _noun_phrase(toks, i)
            if first is not None:
                pair = rel == "between" and first.count == 2
                if pair and not (i < len(toks) and toks[i].text in ("and", ",")):
                    first.count = 1  # "between two trees": one tree on each side
                    targets.extend([add(first), add(first)])
                else:
                    targets.append(add(first))
                if (
                    rel == "between"
                    and i < len(toks)
                    and toks[i].kind == "sep"
                    and toks[i].text in ("and", ",")
                ):
                    second, i = _noun_phrase(toks, i + 1)
                    if second is not None:
                        targets.append(add(second))
            if not targets:
                warnings.append(f"'{t.text}' names no object after it; ignored")
                continue
            if subject is not None:
                relations.extend((subject, rel, target) for target in targets)
                if rel != "between":
                    subject = targets[-1]
            else:
                pending_relation = (rel, targets)
        elif t.kind in ("word", "det", "num", "count", "vague"):
            np, i = _noun_phrase(toks, i)
            if np is None:
                continue
            index = add(np)
            if pending_anchor is not None:
                objects[index].anchor = pending_anchor
                pending_anchor = None
            if pending_relation is not None:
                rel, targets = pending_relation
                relations.extend((index, rel, target) for target in targets)
                pending_relation = None
            subject = index
        else:
            i += 1

    # Elided nouns take the noun of the next object that has one and a colour of its own.
    for index in sorted(elided):
        donor = next((o for k, o in enumerate(objects) if k > index and k not in elided), None)
        obj = objects[index]
        if donor is not None and any(a.split()[-1] in COLORS for a in donor.attributes):
            obj.name = donor.name
        else:
            obj.name, obj.attributes = obj.attributes[-1], obj.attributes[:-1]
    # Counts: zero drops an object, vague ones are chosen, huge ones capped; each says so.
    keep: list[int] = []
    for index, obj in enumerate(objects):
        how, vague = stated[index]
        if obj.name in COMMAND_WORDS:
            warnings.append(f"'{obj.name}' is a command or request word, not an object; ignored")
            continue
        if obj.count < 1:
            warnings.append(f"a count of {obj.count} for '{obj.name}' leaves nothing to draw; dropped it")
            continue
        if obj.count > MAX_COUNT:
            warnings.append(
                f"{obj.count} {_inflect().plural_noun(obj.name)} is more than the maximum of {MAX_COUNT}; "
                f"capped at {MAX_COUNT}"
            )
            obj.count = MAX_COUNT
        elif vague:
            warnings.append(f"'{how}' is not an exact count; planned {obj.count} {obj.name}")
        keep.append(index)
    if len(keep) > MAX_OBJECTS:
        dropped = [objects[k].name for k in keep[MAX_OBJECTS:]]
        warnings.append(f"more than {MAX_OBJECTS} objects; dropped {', '.join(dropped)}")
        keep = keep[:MAX_OBJECTS]
    remap = {old: new for new, old in enumerate(keep)}
    final_objects = [objects[k] for k in keep]
    final_relations: list[tuple[int, str, int]] = []
    for s, rel, o in relations:
        if s in remap and o in remap and s != o and (remap[s], rel, remap[o]) not in final_relations:
            final_relations.append((remap[s], rel, remap[o]))
    if not final_objects:
        raise InvalidInputError(
            "prompt",
            f"names no object the rules planner can draw ({text[:60]!r})",
            f"name at least one object, {_EXAMPLE}",
        )
    background = ", ".join([*settings, *styles]) or None
    return Scene(final_objects, final_relations, background, warnings)
