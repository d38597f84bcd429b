"""`python -m serving.model_server <tensorflow_model_server flags>`."""

import os
import sys

# prometheus_client switches every metric to multiprocess files when this is set, which is the gateway's
# setting (gunicorn workers), not the model server's: one process, metrics in memory, as in TF Serving.
for _name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
    os.environ.pop(_name, None)

from serving.model_server.server import main  # noqa: E402 - after the environment is settled

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
