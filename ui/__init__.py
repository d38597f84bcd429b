"""Gradio drawing app: a thin client that sends digits to the gateway and shows what the model saw."""
