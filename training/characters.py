"""Which characters read as digits, which are kept for evaluation, and which non-digits training draws."""

import re
import unicodedata

import numpy as np

# Characters that read as a digit (or as the .notdef box, a 0) once preprocessed: never a non-digit, in
# training or evaluation. Latin, Cyrillic and Greek forms of 0-9 (y and h as an open 4), bars, brackets.
DIGIT_LIKE_CHARS = (
    "0123456789OoDQCcUulIiJj|!¡ZzSsBbGgqdpaeTyh?¿"
    "ОоЗзБбЧчЭэЪъЬьУуФфГгТтСсВвд"
    "ΘθΟοΒβΖζΩΦφσδεξγαΓτΙιΞλЦциЙйЏ"
    "()[]{}/\\•·○●□■◊¤§$&@%∞∂∫¶‡†♪↑↓¦"
)

# Held-out non-digits (`make trust`, tools/trust_sets.py): Cyrillic and Greek forms with no round bowl, no
# single stem, no 2/3/5/7-like hook and no open top (u- and λ-like forms read as 4), plus L; and symbols.
HELD_OUT_LETTERS = "ИЛЫЯЉЊлыяΛΣL"
HELD_OUT_SYMBOLS = "^√∩‰♫♬⌂×→←↔▲►▼◄∆"
# Training keeps away from those and from their near twins too (other cases, accented forms, and symbols
# whose Unicode name says they are the same shape), so `make trust` measures characters never trained on.
_HELD_OUT_NAME_WORDS = (
    "ARROW",
    "ARROWHEAD",
    "TRIANGLE",
    "TRIANGULAR",
    "POINTER",
    "ROOT",
    "CHECK",
    "MULTIPLICATION",
    "SALTIRE",
    "PER MILLE",
    "PER TEN THOUSAND",
    "INTERSECTION",
    "LOGICAL AND",
    "CARET",
    "CIRCUMFLEX",
    "NOTE",
    "NOTES",
    "MUSIC",
    "HOUSE",
    "INCREMENT",
    "DELTA",
    "SUMMATION",
    "SIGMA",
    "LAMDA",
    "LAMBDA",
    "YERU",
    "LJE",
    "NJE",
    "YA",
    "EL",
    "I",
    "SHORT I",
    "L",
    "NABLA",
    "CORNER",
)
# Shapes that are digits (or a 0's ring, a 1's bar) whatever their name: circles, rings, bars, brackets.
_DIGIT_LIKE_NAME_WORDS = (
    "DIGIT",
    "NUMBER",
    "NUMERAL",
    "FRACTION",
    "ZERO",
    "ONE",
    "TWO",
    "THREE",
    "FOUR",
    "FIVE",
    "SIX",
    "SEVEN",
    "EIGHT",
    "NINE",
    "CIRCLE",
    "CIRCLED",
    "RING",
    "BULLET",
    "DOT OPERATOR",
    "EMPTY SET",
    "DIAMETER",
    "INFINITY",
    "INTEGRAL",
    "PARALLEL",
    "DIVIDES",
    "SLASH",
    "SOLIDUS",
    "BRACKET",
    "PARENTHESIS",
    "CEILING",
    "FLOOR",
    "TACK",
    "SUBSET",
    "SUPERSET",
    "UNION",
    "EZH",
    "YOGH",
    "GLOTTAL",
    "OPEN E",
    "SCHWA",
    "VERTICAL",
    "BAR",
    "STROKE",
    "MOON",
    "CRESCENT",
    "MALE",
    "FEMALE",
    "YIN YANG",
    "TRIGRAM",
    "BALLOT BOX",
    "SQUARE",
    "RECTANGLE",
    "LOZENGE",
    "DIAMOND OPERATOR",
    "ANGLE",
    "WREATH",
    "SET MINUS",
    "TURNED",
    "REVERSED",
    "TONE",
    "HOOK",
)
# Greek and Cyrillic letters shaped like a digit, by the letter's name (Latin ones: DIGIT_LIKE_CHARS).
_DIGIT_LIKE_LETTER_WORDS = (
    "STIGMA",
    "KOPPA",
    "SAMPI",
    "RHO",
    "MU",
    "UPSILON",
    "OMEGA",
    "THETA",
    "PHI",
    "ETA",
    "CHE",
    "DZE",
    "ZE",
    "U",
    "STRAIGHT U",
    "GHE",
    "TE",
    "ES",
    "VE",
    "BE",
    "SOFT SIGN",
    "HARD SIGN",
    "E",
    "O",
    "EF",
    "ABKHASIAN",
    "KOMI",
    "SEMISOFT SIGN",
    "YAT",
    "FITA",
    "IZHITSA",
    "UK",
    "OT",
    "KSI",
    "PSI",
)
# Unicode blocks training draws non-digit characters from: letters of Latin, Greek and Cyrillic, and
# symbols (currency, letterlike, mathematical, technical, miscellaneous, dingbats).
_BLOCKS = (
    (0x0021, 0x007E),
    (0x00A1, 0x017F),
    (0x0370, 0x03FF),
    (0x0400, 0x052F),
    (0x20A0, 0x20CF),
    (0x2100, 0x214F),
    (0x2200, 0x22FF),
    (0x2300, 0x2335),
    (0x2600, 0x26FF),
    (0x2700, 0x27BF),
    (0x2A00, 0x2AFF),
)
_CATEGORIES = {"Lu", "Ll", "Lt", "Lo", "Sm", "So", "Sc"}
_EXTRA = "#%*"  # punctuation that is a symbol to anyone
# A glyph whose 28x28 view correlates this well with a printed digit's reads as that digit: Z (0.87 with 2),
# З (1.0 with 3) and Ј (0.91 with 1) do; A (0.81), n (0.85) and Ж do not.
DIGIT_CORRELATION_LIMIT = 0.86


def _words_pattern(words) -> re.Pattern:
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b")


_HELD_OUT_NAMES = _words_pattern(_HELD_OUT_NAME_WORDS)
_DIGIT_LIKE_NAMES = _words_pattern(_DIGIT_LIKE_NAME_WORDS)
_DIGIT_LIKE_LETTERS = _words_pattern(_DIGIT_LIKE_LETTER_WORDS)


def _twins(chars: str) -> set[str]:
    """`chars` in every case."""
    return {form for ch in chars for form in (ch, ch.lower(), ch.upper(), ch.casefold())}


_HELD_OUT_FORMS = _twins(HELD_OUT_LETTERS + HELD_OUT_SYMBOLS)


def _base(ch: str) -> str:
    """The letter under any accents: NFD's first code point."""
    return unicodedata.normalize("NFD", ch)[0]


def _letter_name(name: str) -> str:
    """What follows " LETTER " in a Unicode name ("EL WITH HOOK"), or "" for a name with none."""
    return name.split(" LETTER ")[-1] if " LETTER " in name else ""


def is_held_out(ch: str) -> bool:
    """Whether `ch` is a held-out character or a near twin of one."""
    name = unicodedata.name(ch, "")
    return (
        bool(_twins(ch) & _HELD_OUT_FORMS)
        or bool(_twins(_base(ch)) & _HELD_OUT_FORMS)
        or bool(_HELD_OUT_NAMES.search(_letter_name(name) or name))
    )


def is_digit_like_by_name(ch: str) -> bool:
    """Whether `ch`, its accent-free base or its Unicode name says it is a digit's shape."""
    if ch in DIGIT_LIKE_CHARS or _base(ch) in DIGIT_LIKE_CHARS:  # case matters: A is no digit, a is a 9
        return True
    name = unicodedata.name(ch, "")
    if _DIGIT_LIKE_NAMES.search(name):
        return True
    letter = _letter_name(name)
    return bool(letter) and not name.startswith("LATIN") and bool(_DIGIT_LIKE_LETTERS.search(letter))


def candidates() -> list[str]:
    """Every character of the training blocks that is a letter or symbol, neither held out nor digit-like."""
    chars = []
    for start, end in _BLOCKS:
        for code in range(start, end + 1):
            ch = chr(code)
            if unicodedata.category(ch) not in _CATEGORIES and ch not in _EXTRA:
                continue
            if unicodedata.combining(ch) or is_held_out(ch) or is_digit_like_by_name(ch):
                continue
            chars.append(ch)
    return chars


def _normalised(view: np.ndarray) -> np.ndarray:
    """A 28x28 view blurred a little (a pixel's offset is no difference) and scaled to unit length."""
    import cv2

    blurred = cv2.GaussianBlur(np.asarray(view, np.float32), (5, 5), 1.0).ravel()
    blurred -= blurred.mean()
    return blurred / max(float(np.linalg.norm(blurred)), 1e-6)


def training_non_digit_chars(render) -> str:
    """The candidates that `render(char) -> list of 28x28 views` shows unlike every printed digit.

    `render` gives a character's views in the training fonts (training/synthetic.py); a view whose
    correlation with any digit's view reaches DIGIT_CORRELATION_LIMIT rules the character out.
    """
    digits = np.stack([_normalised(v) for d in "0123456789" for v in render(d)])
    kept = []
    for ch in candidates():
        views = render(ch)
        if not views:
            continue
        if float((np.stack([_normalised(v) for v in views]) @ digits.T).max()) < DIGIT_CORRELATION_LIMIT:
            kept.append(ch)
    return "".join(kept)
