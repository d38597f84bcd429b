"""MNIST gateway: a Flask REST API that preprocesses digit images and forwards them to TF Serving."""

import time

import cv2
from flask import Flask, g, request

from gateway.api import api
from gateway.client import ServingClient, create_client
from gateway.config import GatewayConfig
from gateway.docs import docs
from gateway.errors import register_error_handlers
from gateway.feedback.api import feedback_api
from gateway.feedback.store import FeedbackStore, create_feedback_engine
from gateway.metrics import GatewayMetrics
from gateway.ops import ops
from gateway.routing import Router, RoutingFile
from gateway.service import PredictionService


def create_app(config: GatewayConfig | None = None, serving_client: ServingClient | None = None) -> Flask:
    """Build the gateway app; config defaults to the environment, the client to the configured transport.

    Nothing connects here: the gRPC channel / HTTP session opens on the first upstream call, in
    the process (gunicorn worker) that makes it.
    """
    config = config or GatewayConfig.from_env()
    # One image is too small to gain from OpenCV's thread pool, which would fight the gunicorn
    # workers for the cores.
    cv2.setNumThreads(1)
    # A hostile upload makes libpng complain on stderr; the client gets the 4xx, the log stays clean.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    client = serving_client or create_client(config)
    metrics = GatewayMetrics()
    router = Router(
        client,
        default_label=config.default_label,
        routing_file=RoutingFile(config.routing_file),
        cache_s=config.label_cache_s,
    )

    app = Flask(__name__)
    app.config["GATEWAY"] = config
    # Whole-body cap (a batch of images); each image is also held to MAX_UPLOAD_BYTES.
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = config.max_request_bytes
    app.json.sort_keys = False
    app.extensions["gateway.service"] = PredictionService(config, client, router, metrics)
    app.extensions["gateway.metrics"] = metrics
    # The engine connects (and migrates the schema) on the first feedback request, in the worker.
    app.extensions["gateway.feedback"] = FeedbackStore(create_feedback_engine(config.feedback_database))

    app.register_blueprint(api)
    app.register_blueprint(feedback_api)
    app.register_blueprint(ops)
    app.register_blueprint(docs)
    register_error_handlers(app)
    _record_requests(app, metrics)
    return app


def _record_requests(app: Flask, metrics: GatewayMetrics) -> None:
    """Count every request by route template and status, and time it."""

    @app.before_request
    def _start_timer():
        g.request_start = time.perf_counter()

    @app.after_request
    def _record(response):
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        start = g.get("request_start")
        if start is not None:
            metrics.latency.labels(route).observe(time.perf_counter() - start)
        return response


__all__ = ["GatewayConfig", "create_app"]
