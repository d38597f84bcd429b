"""Integrated gradients (Sundararajan et al., 2017): which pixels pushed the model towards its answer."""

from contract import mnist


def integrated_gradients(logits_of, image, steps: int = mnist.EXPLAIN_STEPS):
    """Attribution [n, 28, 28] of each image's predicted digit, and that digit [n].

    Averages the gradient of the predicted digit's logit along the straight path from an all-black image
    (no ink) to the input, at `steps` midpoints, times the input: the attributions add up to about
    logit(input) - logit(black). The logit, not the probability: softmax saturates and hides the gradient.
    """
    import tensorflow as tf

    digit = tf.argmax(logits_of(image), axis=-1, output_type=tf.int64)
    count = tf.shape(image)[0]
    alphas = (tf.range(steps, dtype=tf.float32) + 0.5) / steps
    path = tf.reshape(alphas[None, :, None, None, None] * image[:, None], [-1, *mnist.INPUT_SHAPE])
    targets = tf.repeat(digit, steps)
    with tf.GradientTape() as tape:
        tape.watch(path)
        logits = logits_of(path)
        chosen = tf.gather(logits, targets, axis=1, batch_dims=1)
    gradients = tf.reshape(tape.gradient(chosen, path), [count, steps, *mnist.INPUT_SHAPE])
    attribution = image * tf.reduce_mean(gradients, axis=1)
    return attribution[..., 0], digit
