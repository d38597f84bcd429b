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
    """One image in; digit, confidence, probabilities, the model's judgement and version out."""
    start = time.perf_counter()
    service = _service()
    config = service.config
    item, options = single_input(request, config.max_upload_bytes, config.max_request_bytes)
    prepared = service.prepare(item, options.preprocessing)
    deadline = Deadline.after(config.upstream_timeout_s)
    prediction, route, upstream_ms = service.predict([prepared.image], options, deadline)
    rejection = service.rejection(prediction, 0, options)
    if rejection is not None:
        raise rejection
    reply = service.result(prediction, 0, prepared, options)
    timings = {"decode": prepared.decode_ms, "preprocess": prepared.preprocess_ms, "upstream": upstream_ms}
    if options.explain:
        explanation, timings["explain"] = service.explain([prepared.image], prediction.version, deadline)
        reply["explanation"] = service.explanation(explanation, 0, prepared.image, options)
    timings["total"] = round((time.perf_counter() - start) * 1000, 3)
    reply.update(
        {
            "model": service.model_info(prediction, route),
            "preprocessing": options.preprocessing,
            "timings_ms": timings,
        }
    )
    return jsonify(reply)


@api.post("/predict/batch")
def predict_batch():
    """Up to MAX_BATCH_SIZE images, one upstream call (two to explain); a failed image is its slot's error."""
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
    deadline = Deadline.after(config.upstream_timeout_s)
    prediction, route, upstream_ms = service.predict([slot.image for slot in prepared], options, deadline)
    model = service.model_info(prediction, route)
    rows = iter(range(len(prepared)))
    answered: list[tuple[int, int]] = []  # (slot, row of the prediction)
    for index, slot in enumerate(slots):
        if isinstance(slot, GatewayError):
            continue
        row = next(rows)
        rejection = service.rejection(prediction, row, options)
        if rejection is not None:
            slots[index] = rejection
        else:
            answered.append((index, row))
    if not answered:
        raise BatchFailed(slots)
    results: list = [
        slot.to_dict() | {"status": slot.status} if isinstance(slot, GatewayError) else None for slot in slots
    ]
    for index, row in answered:
        results[index] = service.result(prediction, row, slots[index], options)
    timings = {
        "decode": round(sum(p.decode_ms for p in prepared), 3),
        "preprocess": round(sum(p.preprocess_ms for p in prepared), 3),
        "upstream": upstream_ms,
    }
    if options.explain:
        images = [slots[index].image for index, _ in answered]
        explanation, timings["explain"] = service.explain(images, prediction.version, deadline)
        for position, (index, _) in enumerate(answered):
            results[index]["explanation"] = service.explanation(
                explanation, position, slots[index].image, options
            )
    timings["total"] = round((time.perf_counter() - start) * 1000, 3)
    return jsonify(
        {"results": results, "model": model, "preprocessing": options.preprocessing, "timings_ms": timings}
    )


@api.get("/models")
def models():
    """Versions and states from the model server, the labels the gateway routes by, the routing, and each
    model server's own versions and states (`backends`)."""
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
            "backends": [
                {
                    "address": row.address,
                    "up": row.error is None,
                    "versions": [
                        {"version": item.version, "state": item.state}
                        for item in sorted(row.versions or [], key=lambda item: item.version)
                    ],
                    **({"error": row.error} if row.error else {}),
                }
                for row in service.client.backend_statuses(deadline, known=statuses)
            ],
        }
    )
