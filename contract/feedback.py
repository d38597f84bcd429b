"""Feedback records: how the model input is stored and which records are held out from retraining.

The gateway writes records by these rules and retraining will read them by the same ones, so both
import this TensorFlow-free module.
"""

import hashlib

import numpy as np

from contract.mnist import IMAGE_HEIGHT, IMAGE_WIDTH

# The 28x28 input the model saw, stored exactly: float32 little-endian, row-major, 3136 bytes.
STORED_INPUT_DTYPE = "<f4"
STORED_INPUT_BYTES = IMAGE_HEIGHT * IMAGE_WIDTH * np.dtype(STORED_INPUT_DTYPE).itemsize

# Share of records kept out of retraining to measure it on. The split depends only on the stored input,
# never on time or arrival order, so it is the same on every replica and on every re-read; identical
# inputs always fall on the same side, so a digit sent twice cannot leak from training into the test.
HELD_OUT_SHARE = 0.2
_HASH_RANGE = 2**64

DEFAULT_FEEDBACK_DATABASE = "data/feedback.sqlite3"  # relative to the working directory


def input_bytes(image: np.ndarray) -> bytes:
    """The stored form of a 28x28 (or 28x28x1) model input."""
    return np.asarray(image, dtype=STORED_INPUT_DTYPE).reshape(IMAGE_HEIGHT, IMAGE_WIDTH).tobytes()


def input_from_bytes(data: bytes) -> np.ndarray:
    """The 28x28 float32 model input back from its stored bytes."""
    return np.frombuffer(data, dtype=STORED_INPUT_DTYPE).reshape(IMAGE_HEIGHT, IMAGE_WIDTH)


def is_held_out(stored_input: bytes) -> bool:
    """Whether a record is held out: the first 8 bytes of SHA-256(stored input) fall in the low share."""
    value = int.from_bytes(hashlib.sha256(stored_input).digest()[:8], "big")
    return value < HELD_OUT_SHARE * _HASH_RANGE
