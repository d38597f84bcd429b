"""`python -m serving.model_server <tensorflow_model_server flags>`."""

import sys

from serving.model_server.server import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
