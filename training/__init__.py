"""Training package: MNIST data, the CNN, its training loop, evaluation and SavedModel export."""
