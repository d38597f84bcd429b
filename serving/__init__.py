"""TF Serving configuration and a TF-Serving-compatible local model server."""
