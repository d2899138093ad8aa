"""Words of the toy world: how pretraining captions name each attribute value.

Real CLIP's zero-shot errors come mostly from the text side: a class name may be
rare in web captions, or shared by several visual concepts, while the image
features still separate the classes (a linear probe on them is far stronger
than zero-shot; Radford et al. 2021, Fig. 10 and Sec. 3.2). The toy corpus
reproduces that: every value has a *primary* name (most captions), a
*secondary* and a *rare* synonym, and some values share an *ambiguous* word with
a neighbour ("round" is true of a circle and of a ring). Image features learn
every value from the primary names; a downstream task that names its classes
with rare or ambiguous words gets a weaker zero-shot classifier, exactly the
gap prompt learning (CoOp, Zhou et al. 2022) closes.
"""

from __future__ import annotations

import numpy as np

# name kinds and how often a caption uses each when it mentions a value
NAME_WEIGHTS = {"primary": 0.70, "secondary": 0.18, "rare": 0.05, "shared": 0.07}

SHAPE_NAMES = {
    "circle": ("circle", "disc", "orb"),
    "square": ("square", "box", "tile"),
    "triangle": ("triangle", "wedge", "pyramid"),
    "diamond": ("diamond", "rhombus", "lozenge"),
    "ring": ("ring", "hoop", "annulus"),
    "cross": ("cross", "plus", "crucifix"),
    "star": ("star", "pentagram", "sparkle"),
    "crescent": ("crescent", "moon", "sickle"),
}
SHAPE_SHARED = {
    "round": ("circle", "ring"),
    "boxy": ("square", "diamond"),
    "pointy": ("triangle", "star"),
    "symbol": ("cross", "crescent"),
}

PATTERN_NAMES = {
    "solid": ("solid", "plain", "uniform"),
    "striped": ("striped", "banded", "lined"),
    "dotted": ("dotted", "spotted", "polka"),
    "checkered": ("checkered", "chequered", "plaid"),
    "zigzag": ("zigzag", "chevron", "jagged"),
    "speckled": ("speckled", "grainy", "flecked"),
    "ringed": ("ringed", "concentric", "swirled"),
    "gridded": ("gridded", "meshed", "latticed"),
}
PATTERN_SHARED = {
    "spotty": ("dotted", "speckled"),
    "tiled": ("checkered", "gridded"),
    "stripy": ("striped", "zigzag"),
    "wavy": ("ringed", "zigzag"),
}

COLOR_NAMES = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange", "amber", "tangerine"),
    "yellow": ("yellow", "golden", "lemon"),
    "green": ("green", "emerald", "lime"),
    "cyan": ("cyan", "turquoise", "aqua"),
    "blue": ("blue", "azure", "navy"),
    "purple": ("purple", "violet", "lilac"),
    "pink": ("pink", "rose", "salmon"),
    "white": ("white", "ivory", "snowy"),
    "brown": ("brown", "chocolate", "tan"),
}
COLOR_SHARED = {
    "reddish": ("red", "pink"),
    "yellowish": ("orange", "yellow"),
    "bluish": ("blue", "cyan"),
    "dusky": ("purple", "brown"),
}

DIGIT_NAMES = {
    "zero": ("zero", "0", "nought"),
    "one": ("one", "1", "single"),
    "two": ("two", "2", "pair"),
    "three": ("three", "3", "trio"),
    "four": ("four", "4", "quartet"),
    "five": ("five", "5", "quintet"),
    "six": ("six", "6", "sextet"),
    "seven": ("seven", "7", "septet"),
    "eight": ("eight", "8", "octet"),
    "nine": ("nine", "9", "nonet"),
}

NAMES = {"shape": SHAPE_NAMES, "pattern": PATTERN_NAMES, "color": COLOR_NAMES, "digit": DIGIT_NAMES}
SHARED = {"shape": SHAPE_SHARED, "pattern": PATTERN_SHARED, "color": COLOR_SHARED, "digit": {}}


def shared_word(attr: str, value: str) -> str | None:
    """The ambiguous word that covers ``value`` (and a neighbour), if any."""
    for word, values in SHARED[attr].items():
        if value in values:
            return word
    return None


def name_of(attr: str, value: str, kind: str) -> str:
    """The word of the given kind ("primary", "secondary", "rare", "shared") for a value."""
    if kind == "shared":
        word = shared_word(attr, value)
        if word is None:
            raise ValueError(
                f"{attr} {value!r} has no shared word; values with one: "
                f"{', '.join(v for vs in SHARED[attr].values() for v in vs)}"
            )
        return word
    return NAMES[attr][value][("primary", "secondary", "rare").index(kind)]


def sample_name(attr: str, value: str, rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
    """A caption word for ``value`` and the set of values that word is true of."""
    kinds = list(NAME_WEIGHTS)
    word = shared_word(attr, value)
    w = np.array([NAME_WEIGHTS[k] for k in kinds])
    if word is None:
        w[kinds.index("primary")] += w[kinds.index("shared")]
        w[kinds.index("shared")] = 0.0
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    if kind == "shared":
        return word, SHARED[attr][word]
    return name_of(attr, value, kind), (value,)
