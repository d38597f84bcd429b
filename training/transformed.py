"""Hard non-digits for the detector: MNIST training digits mirrored, flipped or turned on their side.

A mirrored 4 or a 7 on its side is no digit, yet it has MNIST's strokes, thickness and framing. Trained
against them, the detector cannot tell digits from non-digits by how an image is rendered (the synthetic
non-digits are all rendered by training/synthetic.py) and has to learn the ten shapes themselves. A
transform is applied only to classes it turns into something that is not a digit: a mirrored 0, 1 or 8 is
still that digit, a 6 upside down is a 9, and an upside-down 2 or 5 can pass for a 2.
"""

from functools import partial

import numpy as np

from contract.mnist import NUM_CLASSES

# transform -> (the function, the classes it leaves a digit or may make one). On its side a 0 is a wide ring,
# as a hasty 0 can be; a 1 or an 8 written with a strong slant stays a slanted 1 or 8; and a 6 or a 9 comes
# out as a 6 or 9 tilted by less than 90 degrees.
TRANSFORMS = {
    "mirrored": (np.fliplr, frozenset({0, 1, 8})),
    "flipped": (np.flipud, frozenset({0, 1, 2, 3, 5, 6, 8, 9})),
    "turned_180": (partial(np.rot90, k=2), frozenset({0, 1, 2, 5, 6, 8, 9})),
    "turned_left": (partial(np.rot90, k=1), frozenset({0, 1, 6, 8, 9})),
    "turned_right": (partial(np.rot90, k=-1), frozenset({0, 1, 6, 8, 9})),
}


def allowed_pairs() -> list[tuple[str, int]]:
    """Every (transform, class) whose result is not a digit."""
    return [
        (name, label)
        for name, (_, keeps) in TRANSFORMS.items()
        for label in range(NUM_CLASSES)
        if label not in keeps
    ]


def transformed_non_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` non-digits from uint8 digits [m, 28, 28] and their labels, float32 [n, 28, 28] in [0, 1].

    Each (transform, class) pair gets an equal share; the digits are drawn without repetition within a
    class while it lasts. Deterministic given the seed.
    """
    rng = np.random.default_rng([seed, 7_001])
    pairs = allowed_pairs()
    by_class = {label: rng.permutation(np.flatnonzero(labels == label)) for label in range(NUM_CLASSES)}
    used = dict.fromkeys(by_class, 0)
    out = np.empty((n, *images.shape[1:]), np.float32)
    for i, pair in enumerate(rng.permutation(np.arange(n) % len(pairs))):
        name, label = pairs[pair]
        pool = by_class[label]
        if not len(pool):
            raise ValueError(f"no training digit of class {label} to transform")
        index = pool[used[label] % len(pool)]
        used[label] += 1
        out[i] = TRANSFORMS[name][0](images[index]).astype(np.float32) / 255.0
    return out
