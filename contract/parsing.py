"""Reading booleans from flags, query strings, form fields and environment variables, one way."""

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


def parse_bool(raw: str) -> bool:
    """`raw` as a boolean (case and surrounding space ignored); ValueError when it is neither."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{raw!r} is not a boolean (one of {sorted(TRUE_WORDS | FALSE_WORDS)})")
