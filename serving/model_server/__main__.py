"""`python -m serving.model_server <tensorflow_model_server flags>`."""

import os
import sys

# gRPC reads this once, when it is imported. Without the EventEngine, the thread that polls a completion
# queue also does the socket I/O, so a call needs no hand-off between threads (see grpc_loop.py).
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client,-event_engine_listener")

from serving.model_server.server import main  # noqa: E402 - after the gRPC setting above

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
