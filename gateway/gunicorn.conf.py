"""Gunicorn settings for the gateway: `gunicorn -c gateway/gunicorn.conf.py 'gateway:create_app()'`."""

import glob
import os
import shutil
import tempfile

# 2 cores here: two worker processes (preprocessing is CPU work that holds the GIL), a few threads
# each so requests waiting on the model server do not block the worker.
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "4"))
worker_class = os.environ.get("GATEWAY_WORKER_CLASS", "gthread")
# The app is imported in each worker after fork, so every worker opens its own gRPC channel.
preload_app = False
timeout = int(os.environ.get("GATEWAY_WORKER_TIMEOUT_S", "30"))
# The worker heartbeat touches a file on every loop: on a RAM-backed directory it never waits on a disk
# (gunicorn's advice for containers).
_SHARED_MEMORY = "/dev/shm"
worker_tmp_dir = os.environ.get("GATEWAY_WORKER_TMP_DIR") or (
    _SHARED_MEMORY if os.path.isdir(_SHARED_MEMORY) else None
)
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("GATEWAY_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GATEWAY_LOG_LEVEL", "info")
# No runtime control socket: it defaults to one path per user, which several gateways on a host
# (tests, benchmarks) would fight over, and a non-root container may not be able to create.
control_socket_disable = True
# Request line and header limits (the body limits are the app's MAX_* settings).
limit_request_line = 8190
limit_request_fields = 100


def on_starting(server):
    """Give the workers a clean directory for Prometheus multi-process metrics.

    A directory the operator named is never deleted: only the *.db files prometheus_client writes there
    (stale counts of an earlier run) are removed. A directory the gateway makes is removed at exit.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        os.environ["GATEWAY_OWNS_METRICS_DIR"] = directory
        return
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(glob.escape(directory), "*.db")):
        if os.path.isfile(stale) and not os.path.islink(stale):
            os.remove(stale)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory if on_starting made it (and it is still the one in use)."""
    owned = os.environ.get("GATEWAY_OWNS_METRICS_DIR")
    if owned and owned == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(owned, ignore_errors=True)
