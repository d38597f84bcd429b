"""Command-line tools that drive the running stack (e.g. `make compare`)."""
