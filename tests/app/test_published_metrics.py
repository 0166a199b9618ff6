"""The metrics the CloudWatch agent publishes (infra/boot.PUBLISHED_METRICS) are ones the
app really exposes on /metrics, with the labels they are published by, and of a Prometheus
type the agent keeps (it drops histograms): a renamed metric or label fails here, not as
an empty dashboard."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app.contract import METRICS_PATH
from infra.boot import PUBLISHED_METRICS


def test_every_published_metric_is_exposed_with_its_dimensions_and_a_kept_type(app_factory):
    app = app_factory()  # no Redis: near-cache hits, misses, bypasses
    client = app.test_client()
    client.get("/api/report/7")
    client.get("/api/report/7")  # a near-cache hit
    client.get("/")
    families = list(text_string_to_metric_families(client.get(METRICS_PATH).get_data(True)))
    samples = {s.name: (f.type, s.labels) for f in families for s in f.samples}

    for names, dimension_sets in PUBLISHED_METRICS:
        for name in names:
            assert name in samples, f"{name} is not on /metrics"
            kind, labels = samples[name]
            assert kind in ("counter", "gauge", "summary"), f"{name} is a {kind}"
            for dimensions in dimension_sets:
                # "stack" is added by the scrape configuration, not by the app.
                missing = set(dimensions) - {"stack"} - set(labels)
                assert not missing, f"{name} lacks labels {missing}"
