"""The /v1 blueprint: predict, batch predict and model listing."""

import time

from flask import Blueprint, current_app, jsonify, request

from gateway.deadline import Deadline
from gateway.errors import BatchFailed, GatewayError
from gateway.inputs import batch_inputs, single_input
from gateway.service import PredictionService

api = Blueprint("api", __name__, url_prefix="/v1")


def _service() -> PredictionService:
    return current_app.extensions["gateway.service"]


@api.post("/predict")
def predict():
    """One image in, digit, confidence, probabilities and the serving model version out."""
    start = time.perf_counter()
    service = _service()
    config = service.config
    item, options = single_input(request, config.max_upload_bytes, config.max_request_bytes)
    prepared = service.prepare(item, options.preprocessing)
    prediction, route, upstream_ms = service.predict([prepared.image], options)
    reply = service.result(prediction.probabilities[0], prepared, options, prediction.version)
    reply.update(
        {
            "model": service.model_info(prediction, route),
            "preprocessing": options.preprocessing,
            "timings_ms": {
                "decode": prepared.decode_ms,
                "preprocess": prepared.preprocess_ms,
                "upstream": upstream_ms,
                "total": round((time.perf_counter() - start) * 1000, 3),
            },
        }
    )
    return jsonify(reply)


@api.post("/predict/batch")
def predict_batch():
    """Up to MAX_BATCH_SIZE images, one upstream call; an unreadable image is an error in its slot."""
    start = time.perf_counter()
    service = _service()
    config = service.config
    items, options = batch_inputs(
        request, config.max_upload_bytes, config.max_batch_size, config.max_request_bytes
    )
    slots: list = []
    for item in items:
        if isinstance(item, GatewayError):
            slots.append(item)
            continue
        try:
            slots.append(service.prepare(item, options.preprocessing))
        except GatewayError as error:
            if error.status >= 500:
                raise
            slots.append(error)
    prepared = [slot for slot in slots if not isinstance(slot, GatewayError)]
    if not prepared:
        raise BatchFailed(slots)
    model, upstream_ms, results = None, 0.0, []
    prediction, route, upstream_ms = service.predict([slot.image for slot in prepared], options)
    model = service.model_info(prediction, route)
    rows = iter(zip(prepared, prediction.probabilities, strict=True))
    for slot in slots:
        if isinstance(slot, GatewayError):
            results.append(slot.to_dict() | {"status": slot.status})
        else:
            prepared_image, probabilities = next(rows)
            results.append(service.result(probabilities, prepared_image, options, model["version"]))
    return jsonify(
        {
            "results": results,
            "model": model,
            "preprocessing": options.preprocessing,
            "timings_ms": {
                "decode": round(sum(p.decode_ms for p in prepared), 3),
                "preprocess": round(sum(p.preprocess_ms for p in prepared), 3),
                "upstream": upstream_ms,
                "total": round((time.perf_counter() - start) * 1000, 3),
            },
        }
    )


@api.get("/models")
def models():
    """Versions and states from the model server, the labels the gateway routes by, the routing."""
    service = _service()
    deadline = Deadline.after(service.config.upstream_timeout_s)
    statuses = service.client.model_status(deadline)
    labels = service.router.known_labels(deadline)
    by_version: dict[int, list[str]] = {}
    for name, version in labels.items():
        by_version.setdefault(version, []).append(name)
    versions = [
        {"version": item.version, "state": item.state, "labels": sorted(by_version.get(item.version, []))}
        for item in sorted(statuses, key=lambda item: item.version)
    ]
    return jsonify(
        {
            "model": service.model_name,
            "versions": versions,
            "labels": labels,
            "routing": service.router.routing_summary(),
            "transport": service.client.transport,
        }
    )
