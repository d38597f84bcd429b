"""MNIST serving contract: one TensorFlow-free source of truth for shapes, names and ranges."""

MODEL_NAME = "mnist"
SIGNATURE_NAME = "serving_default"

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
IMAGE_CHANNELS = 1
INPUT_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS)

# Pixels are float32 in [0, 1], white (1.0) digit on black (0.0), like the MNIST IDX files / 255.
INPUT_KEY = "image"
INPUT_DTYPE = "float32"
PIXEL_MIN = 0.0
PIXEL_MAX = 1.0

PROBABILITIES_KEY = "probabilities"
PROBABILITIES_DTYPE = "float32"
DIGIT_KEY = "digit"
DIGIT_DTYPE = "int64"

# The model's own judgement of whether the input is a digit at all, computed inside the SavedModel
# (training/judgement.py): `digit_score` is in [0, 1], higher = more digit-like, and `is_digit` is
# `digit_score >= DIGIT_SCORE_CUT` with the threshold the version fixed at export (its model card says
# which score and threshold). Versions exported before these outputs existed lack both.
DIGIT_SCORE_KEY = "digit_score"
DIGIT_SCORE_DTYPE = "float32"
IS_DIGIT_KEY = "is_digit"
IS_DIGIT_DTYPE = "bool"
DIGIT_SCORE_CUT = 0.5

# A second signature: why the model answered what it did. `attribution` [n, 28, 28] float32 is the
# integrated gradients of the predicted digit's logit with respect to each input pixel, along the straight
# path from an all-black image, with EXPLAIN_STEPS midpoint steps; `digit` [n] int64 is the digit explained.
EXPLAIN_SIGNATURE_NAME = "explain"
ATTRIBUTION_KEY = "attribution"
ATTRIBUTION_DTYPE = "float32"
EXPLAIN_METHOD = "integrated_gradients"
EXPLAIN_BASELINE = "black"
EXPLAIN_STEPS = 32

NUM_CLASSES = 10
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))

# Labels the stack routes by; `stable` takes default traffic, `canary` a configured share of it.
STABLE_LABEL = "stable"
CANARY_LABEL = "canary"

# How the gateway turns an upload into the model input: `standard` only resizes, `enhanced` follows the
# MNIST recipe (gateway/preprocess.py). The gateway, the UI and tools/compare_preprocessing.py read these.
PREPROCESSING_MODES = ("standard", "enhanced")
DEFAULT_PREPROCESSING = "enhanced"
