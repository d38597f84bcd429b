"""A local model server that behaves like tensorflow_model_server for everything this stack uses."""
