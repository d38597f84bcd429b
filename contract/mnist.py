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

NUM_CLASSES = 10
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))

# Labels the stack routes by; `stable` takes default traffic, `canary` a configured share of it.
STABLE_LABEL = "stable"
CANARY_LABEL = "canary"

# How the gateway turns an upload into the model input: `standard` only resizes, `enhanced` follows the
# MNIST recipe (gateway/preprocess.py). The gateway, the UI and tools/compare_preprocessing.py read these.
PREPROCESSING_MODES = ("standard", "enhanced")
DEFAULT_PREPROCESSING = "enhanced"
