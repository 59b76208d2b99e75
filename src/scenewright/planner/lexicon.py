"""Word lists the rules planner reads prompts with.

Kept apart from the parser so that the parser holds only grammar, and so that the LLM planner
and the tests can share the canonical relation names and the count words.
"""

from __future__ import annotations

from scenewright.toyworld.vocab import COLORS as TOY_COLORS
from scenewright.toyworld.vocab import SHAPES as TOY_SHAPES

# Relations: every phrasing maps to one canonical name of the plan schema. Longest phrases are
# matched first, so "on top of" wins over "on" and "to the left of" over "left of".
RELATION_PHRASES: dict[str, str] = {}
for _side, _canon in (("left", "left of"), ("right", "right of")):
    for _lead in ("", "to the ", "on the ", "at the ", "to ", "on "):
        for _tail in (" of", " side of", " hand side of"):
            RELATION_PHRASES[f"{_lead}{_side}{_tail}"] = _canon
RELATION_PHRASES.update(
    {
        "above": "above",
        "over": "above",
        "higher than": "above",
        "below": "below",
        "lower than": "below",
        "on": "on",
        "onto": "on",
        "upon": "on",
        "atop": "on",
        "on top of": "on",
        "sitting on": "on",
        "standing on": "on",
        "resting on": "on",
        "lying on": "on",
        "placed on": "on",
        "under": "under",
        "underneath": "under",
        "beneath": "under",
        "next to": "next to",
        "beside": "next to",
        "besides": "next to",
        "by": "next to",
        "near": "next to",
        "close to": "next to",
        "nearby": "next to",
        "alongside": "next to",
        "adjacent to": "next to",
        "by the side of": "next to",
        "between": "between",
        "in between": "between",
        # Depth is not drawable in a 2-D layout: these become "next to" and the parser says so.
        "in front of": "next to",
        "behind": "next to",
    }
)
DEPTH_PHRASES = frozenset({"in front of", "behind"})
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below", "on", "under", "next to", "between")

# Where an object goes on the canvas when no other object is named: "a cat on the right".
# Values are "left", "right", "top", "bottom", "center" or a corner such as "top left".
ANCHOR_PHRASES: dict[str, str] = {}
_SIDES = {
    "left": "left",
    "right": "right",
    "top": "top",
    "bottom": "bottom",
    "upper": "top",
    "lower": "bottom",
}
_CORNERS = {
    f"{v} {h}": f"{_SIDES[v]} {h}" for v in ("top", "bottom", "upper", "lower") for h in ("left", "right")
}
for _words, _side in [*_SIDES.items(), *_CORNERS.items()]:
    if _words in ("upper", "lower"):
        continue
    for _lead in ("on the ", "to the ", "at the ", "in the ", "at ", "on ", "in "):
        for _tail in ("", " side", " corner", " part", " half"):
            ANCHOR_PHRASES[f"{_lead}{_words}{_tail}"] = _side
            for _canvas in ("image", "picture", "photo", "frame", "canvas", "scene"):
                ANCHOR_PHRASES[f"{_lead}{_words}{_tail} of the {_canvas}"] = _side
for _lead in ("in the ", "at the ", "in "):
    for _word in ("middle", "center", "centre"):
        ANCHOR_PHRASES[f"{_lead}{_word}"] = "center"
ANCHOR_PHRASES["centered"] = "center"
ANCHOR_PHRASES["in the foreground"] = "bottom"
ANCHOR_PHRASES["in the background"] = "top"

SEPARATORS = frozenset({",", ";", ".", "and", "with", "plus", "as well as", "along with", "together with"})
SEPARATOR_PHRASES = ("as well as", "along with", "together with")

FILLER = frozenset(
    {
        "is", "are", "sits", "sit", "sitting", "stands", "stand", "standing", "placed", "located",
        "positioned", "lying", "lies", "lie", "which", "that", "there", "it", "they", "both",
        "also", "floating", "hanging", "seen", "shown", "visible", "appears", "appear", "just",
        "directly", "right", "somewhere", "here", "while", "all", "exactly", "precisely",
    }
)  # fmt: skip

UNITS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
TENS: dict[str, int] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES: dict[str, int] = {"hundred": 100, "thousand": 1000, "million": 1_000_000}

# Phrases that state a count without a number word. Exact ones first, then vague ones, which get
# a warning because the planner has to pick a number.
COUNT_PHRASES: dict[str, int] = {
    "a pair of": 2,
    "pair of": 2,
    "a couple of": 2,
    "couple of": 2,
    "a trio of": 3,
    "a dozen": 12,
    "dozen": 12,
    "half a dozen": 6,
    "a half dozen": 6,
    "a single": 1,
    "single": 1,
    "a lone": 1,
    "one single": 1,
    "another": 1,
    "twin": 2,
}
VAGUE_COUNTS: dict[str, int] = {
    "a few": 3,
    "few": 3,
    "several": 3,
    "some": 2,
    "many": 5,
    "a lot of": 5,
    "lots of": 5,
    "a bunch of": 4,
    "a group of": 3,
    "a number of": 3,
    "numerous": 6,
    "multiple": 3,
    "various": 3,
    "a pile of": 4,
    "a herd of": 4,
    "a flock of": 5,
    "a row of": 4,
}
DETERMINERS = frozenset({"a", "an", "the", "this", "that", "its", "his", "her", "their", "my", "our"})

# Adjectives we recognise by name. Others are found by position (words before the noun).
COLORS = frozenset(
    set(TOY_COLORS)
    | {
        "black", "brown", "pink", "gray", "grey", "silver", "gold", "golden", "beige", "violet",
        "magenta", "turquoise", "teal", "navy", "maroon", "indigo", "crimson", "lime", "tan",
        "cream", "ivory", "olive", "khaki", "lavender", "scarlet", "amber",
    }
)  # fmt: skip
COLOR_MODIFIERS = frozenset({"light", "dark", "bright", "pale", "deep", "pastel", "neon"})
ADJECTIVES = frozenset(
    COLORS
    | COLOR_MODIFIERS
    | {
        "small", "large", "big", "tiny", "huge", "giant", "little", "tall", "short", "long",
        "wooden", "metal", "metallic", "plastic", "striped", "spotted", "shiny", "old", "new",
        "round", "square", "fluffy", "cute", "happy", "sleeping", "young", "baby", "furry",
        "transparent", "glowing", "broken", "empty", "full", "ripe", "fresh", "wet", "dry",
        "polka-dotted", "checkered", "vintage", "modern", "red-and-white", "black-and-white",
    }
)  # fmt: skip

# Nouns of more than one word. The parser matches the longest one ending a noun phrase.
MULTIWORD_NOUNS = frozenset(
    {
        "fire hydrant", "stop sign", "parking meter", "traffic light", "sports ball",
        "baseball bat", "baseball glove", "tennis racket", "wine glass", "hot dog",
        "potted plant", "dining table", "cell phone", "mobile phone", "teddy bear", "hair drier",
        "hair dryer", "ice cream", "coffee cup", "coffee mug", "tea cup", "christmas tree",
        "palm tree", "race car", "police car", "fire truck", "sports car", "polar bear",
        "pickup truck", "street lamp", "light bulb", "soccer ball", "beach ball", "rubber duck",
        "paper plane", "alarm clock", "washing machine", "water bottle", "picture frame",
        "toy car", "tennis ball", "basketball hoop", "frying pan", "coffee table",
        "office chair", "desk lamp", "traffic cone", "hot air balloon", "fire place",
        "golden retriever", "german shepherd", "guinea pig", "sea turtle", "tree house",
        "bird house", "dog house", "cowboy hat", "top hat", "wrist watch", "soda can",
        "beer bottle", "wine bottle", "cutting board", "flower pot", "flower vase",
        "sail boat", "fishing boat", "space shuttle", "school bus", "double decker bus",
        "remote control", "computer mouse", "computer monitor",
    }
)  # fmt: skip

# Nouns that are plural in form but name one thing; "a pair of scissors" is one object.
PLURALIA_TANTUM = frozenset(
    {
        "scissors",
        "sunglasses",
        "eyeglasses",
        "pants",
        "jeans",
        "shorts",
        "trousers",
        "binoculars",
        "headphones",
    }
)

# Background and setting: a preposition, then optionally a determiner and up to two modifiers,
# then one of these words, is a setting clause rather than an object.
PLACE_NOUNS = frozenset(
    {
        "forest", "woods", "jungle", "beach", "desert", "field", "meadow", "park", "garden",
        "city", "street", "road", "kitchen", "living room", "bedroom", "bathroom", "office",
        "room", "studio", "snow", "rain", "fog", "mist", "space", "sky", "ocean", "sea", "lake",
        "river", "mountains", "mountain", "countryside", "village", "town", "cave", "library",
        "classroom", "restaurant", "cafe", "market", "farm", "grass", "sand", "water",
        "underwater", "background", "night", "nighttime", "sunset", "sunrise", "dawn", "dusk",
        "twilight", "daytime", "midnight", "noon", "evening", "morning", "afternoon", "winter",
        "summer", "autumn", "spring", "fall", "storm", "landscape", "valley", "hills",
        "savanna", "arctic", "swamp", "island", "harbor", "harbour", "alley", "backyard",
        "yard", "wilderness", "universe", "galaxy", "moonlight", "sunlight", "daylight",
        "clouds", "outer space", "city street", "white background", "black background",
    }
)  # fmt: skip
PLACE_PREPOSITIONS = frozenset(
    {
        "in",
        "on",
        "at",
        "inside",
        "under",
        "against",
        "during",
        "through",
        "across",
        "amid",
        "amidst",
        "within",
        "by",
    }
)

# Styles: a phrase anywhere in the prompt that says how to draw, not what.
STYLE_PHRASES = frozenset(
    {
        "watercolor", "watercolour", "watercolor painting", "watercolour painting",
        "oil painting", "painting", "pencil sketch", "pencil drawing", "sketch", "drawing",
        "illustration", "cartoon", "anime", "pixel art", "photorealistic", "realistic",
        "3d render", "render", "low poly", "digital art", "impressionist", "cubist", "vintage photo",
        "minimalist", "ukiyo-e", "line art", "comic", "charcoal drawing", "studio photo",
        "cinematic", "hyperrealistic", "concept art", "claymation", "isometric",
    }
)  # fmt: skip
# Words that open a prompt without naming an object: "a photo of", "an image of".
MEDIUM_NOUNS = frozenset({"photo", "photograph", "picture", "image", "shot", "snapshot", "scene", "view"})

# A few function words of other languages written in the Latin script: a prompt made of these
# and no English function word is not English, and the rules planner says so instead of guessing.
FOREIGN_FUNCTION_WORDS = frozenset(
    {
        "le", "la", "les", "un", "une", "des", "du", "et", "avec", "sur", "sous", "dans", "der",
        "die", "das", "ein", "eine", "einen", "und", "mit", "auf", "unter", "neben", "el", "los",
        "las", "una", "unos", "unas", "y", "con", "sobre", "bajo", "il", "lo", "gli", "uno",
        "di", "del", "della", "dei", "delle", "sopra", "sotto", "dos", "tres", "deux", "trois",
        "zwei", "drei", "vier", "gatos", "chat", "chats", "gato", "perro", "perros", "hund",
        "katze", "katzen", "gatto", "gatti", "cane", "rouge", "rojo", "rot", "bleu", "azul",
        "blau", "vert", "verde", "grün", "izquierda", "derecha", "gauche", "droite", "links",
        "rechts", "een", "het", "mesa", "tisch", "auto", "noir", "schwarz", "negro",
    }
)  # fmt: skip
ENGLISH_FUNCTION_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "and",
        "with",
        "on",
        "in",
        "at",
        "to",
        "is",
        "are",
        "left",
        "right",
        "above",
        "below",
        "next",
        "under",
        "two",
        "three",
        "one",
    }
)

# Sizes relative to a default object (1.0), and width / height priors, by singular noun.
SIZE_PRIORS: dict[str, float] = {
    "apple": 0.6, "orange": 0.6, "banana": 0.65, "cup": 0.55, "mug": 0.55, "ball": 0.6,
    "sports ball": 0.6, "cell phone": 0.5, "phone": 0.5, "mouse": 0.5, "spoon": 0.5,
    "fork": 0.5, "knife": 0.5, "donut": 0.6, "egg": 0.5, "lemon": 0.55, "cookie": 0.5,
    "bird": 0.7, "bottle": 0.75, "wine glass": 0.7, "vase": 0.85, "book": 0.65,
    "clock": 0.7, "remote": 0.5, "toothbrush": 0.5, "scissors": 0.6, "teddy bear": 0.8,
    "car": 1.0, "bus": 1.0, "truck": 1.0, "train": 1.0, "elephant": 1.0, "giraffe": 1.0,
    "couch": 1.0, "sofa": 1.0, "bed": 1.0, "table": 1.0, "dining table": 1.0, "horse": 1.0,
    "cow": 1.0, "bear": 1.0, "airplane": 1.0, "boat": 1.0, "tree": 1.0, "house": 1.0,
}  # fmt: skip
ASPECT_PRIORS: dict[str, float] = {
    "giraffe": 0.6, "person": 0.45, "man": 0.45, "woman": 0.45, "child": 0.5, "boy": 0.5,
    "girl": 0.5, "bottle": 0.4, "vase": 0.6, "wine glass": 0.5, "fire hydrant": 0.55,
    "tree": 0.65, "lamp": 0.5, "traffic light": 0.4, "candle": 0.4, "tower": 0.35,
    "penguin": 0.6, "parking meter": 0.4, "umbrella": 0.9, "chair": 0.75, "clock": 1.0,
    "car": 1.6, "bus": 1.8, "train": 2.0, "truck": 1.6, "couch": 1.8, "sofa": 1.8, "bed": 1.5,
    "bench": 1.8, "dining table": 1.6, "table": 1.5, "boat": 1.6, "airplane": 1.8,
    "horse": 1.3, "elephant": 1.3, "dog": 1.2, "cat": 1.1, "cow": 1.3, "sheep": 1.2,
    "laptop": 1.3, "keyboard": 2.5, "skateboard": 2.0, "banana": 1.5, "surfboard": 0.4,
    "skis": 0.4, "snowboard": 2.2, "bicycle": 1.5, "motorcycle": 1.5, "zebra": 1.3,
    "hot dog": 2.0, "carrot": 1.8, "pizza": 1.3, "cake": 1.2, "tv": 1.5, "book": 0.75,
}  # fmt: skip

TOY_SHAPES_SINGULAR = frozenset(TOY_SHAPES)
