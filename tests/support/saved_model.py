"""Read an exported SavedModel's serving signature as plain names, dtypes and shapes."""

from pathlib import Path

from contract import mnist


def describe_signature(version_dir: Path) -> dict:
    """{"inputs": {name: (dtype, shape)}, "outputs": {...}} of the `serving_default` signature."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(version_dir)).signatures[mnist.SIGNATURE_NAME]
    _, kwargs = signature.structured_input_signature
    return {
        "inputs": {k: (v.dtype.name, v.shape.as_list()) for k, v in kwargs.items()},
        "outputs": {k: (v.dtype.name, v.shape.as_list()) for k, v in signature.structured_outputs.items()},
    }


def contract_signature() -> dict:
    """The signature the contract module promises, in the same form as describe_signature."""
    return {
        "inputs": {mnist.INPUT_KEY: (mnist.INPUT_DTYPE, [None, *mnist.INPUT_SHAPE])},
        "outputs": {
            mnist.PROBABILITIES_KEY: (mnist.PROBABILITIES_DTYPE, [None, mnist.NUM_CLASSES]),
            mnist.DIGIT_KEY: (mnist.DIGIT_DTYPE, [None]),
            mnist.DIGIT_SCORE_KEY: (mnist.DIGIT_SCORE_DTYPE, [None]),
            mnist.IS_DIGIT_KEY: (mnist.IS_DIGIT_DTYPE, [None]),
        },
    }
