"""Metrics: prometheus_client exposition, escaped label values, series only for listed model names."""

import uuid

from prometheus_client.parser import text_string_to_metric_families

from serving.model_server.metrics import REQUEST_COUNT, Metrics


def samples(page: str, name: str) -> list:
    return [s for family in text_string_to_metric_families(page) for s in family.samples if s.name == name]


def test_only_listed_model_names_create_series():
    metrics = Metrics(lambda name: name == "mnist")
    metrics.observe_request("mnist", "predict", "REST", "OK", 0.001)
    for _ in range(1000):
        metrics.observe_request(uuid.uuid4().hex, "predict", "REST", "NOT_FOUND", 0.001)
    counts = {s.labels["model_name"]: s.value for s in samples(metrics.render(), REQUEST_COUNT + "_total")}
    assert counts == {"mnist": 1.0, "": 1000.0}


def test_label_values_are_escaped():
    odd = 'x"y\n\\z'
    metrics = Metrics(lambda name: True)  # even a listed name with quotes and newlines stays one label
    metrics.observe_request(odd, "predict", "GRPC", "OK", 0.002)
    page = metrics.render()
    assert 'model_name="x\\"y\\n\\\\z"' in page
    (sample,) = samples(page, REQUEST_COUNT + "_total")
    assert sample.labels["model_name"] == odd


def test_version_state_gauge_marks_one_state():
    metrics = Metrics(lambda name: True)
    metrics.set_version_state("mnist", 3, "LOADING")
    metrics.set_version_state("mnist", 3, "AVAILABLE")
    states = {
        s.labels["state"]: s.value
        for s in samples(metrics.render(), ":tensorflow:serving:model_version_state")
        if s.labels["version"] == "3"
    }
    assert states == {"LOADING": 0.0, "AVAILABLE": 1.0, "UNLOADING": 0.0, "END": 0.0}


def test_latency_is_a_histogram_in_microseconds():
    metrics = Metrics(lambda name: True)
    metrics.observe_request("mnist", "predict", "REST", "OK", 0.0015)
    (total,) = samples(metrics.render(), ":tensorflow:serving:request_latency_sum")
    assert total.value == 1500.0
