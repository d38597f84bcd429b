"""The model's input/output contract, shared by training, serving clients and the gateway."""
