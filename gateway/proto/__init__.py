"""TF Serving wire messages (generated from tf_serving_subset.proto) and gRPC stubs, without TensorFlow."""
