"""The README's list of metrics is what an operator builds dashboards and alerts from: every
name, label and label value it gives must be one /metrics really exports, and every one
/metrics exports must be in it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ivr_server import metrics
from ivr_server.metrics_collectors import ESTIMATE_STATS

from .conftest import ROOT
from .test_observability import scrape

README = ROOT / "README.md"
SECTION = "### Health, metrics and logs"
# Labels whose values come from a fixed set in the code (the others are URL rules, methods,
# status classes and queue names): the README lists those values in the metric's entry.
FIXED_VALUES = {
    ("ivr_calls_ended_total", "outcome"): metrics.OUTCOMES,
    ("ivr_sms_messages_total", "event"): metrics.SMS_EVENTS,
    ("ivr_callbacks_total", "event"): metrics.CALLBACK_EVENTS,
    ("ivr_speech_recognition_seconds", "path"): metrics.RECOGNITION_PATHS,
    ("ivr_queue_wait_estimate_seconds", "stat"): frozenset(ESTIMATE_STATS),
}
NAME = re.compile(r"`(ivr_\w+)(?:\{([\w,]+)\})?`")
TICKED = re.compile(r"`([^`]+)`")


@dataclass
class Entry:
    """One item of the README's list: the metrics it names and the values it gives."""

    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: set[str] = field(default_factory=set)


def readme_entries() -> list[Entry]:
    text = README.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n### ", len(SECTION))]
    items = re.findall(r"^  - (`ivr_.*(?:\n    .*)*)", section, flags=re.MULTILINE)
    entries = []
    for item in items:
        entry = Entry()
        for name, labels in NAME.findall(item):
            entry.labels[name] = tuple(labels.split(",")) if labels else ()
        entry.values = {t for t in TICKED.findall(item) if not t.startswith("ivr_")}
        entries.append(entry)
    return entries


def exported(body: str) -> dict[str, set[str]]:
    """Metric name (as written in a scrape: counters with _total) -> its label names."""
    families = {f.name: f for f in text_string_to_metric_families(body)
                if f.name.startswith("ivr_")}
    out = {}
    for name, family in families.items():
        if name.endswith("_created") and name.removesuffix("_created") in families:
            continue  # prometheus_client's creation time of a counter, outside multiprocess
        shown = f"{name}_total" if family.type == "counter" else name
        out[shown] = {k for s in family.samples for k in s.labels if k != "le"}
    return out


def test_the_readme_lists_exactly_the_metrics_and_labels_that_metrics_exports(app):
    assert app.test_client().get("/no/such/page").status_code == 404  # a latency sample
    body = scrape(app)
    documented = {name: labels for e in readme_entries() for name, labels in e.labels.items()}
    exports = exported(body)
    assert set(documented) == set(exports), (
        f"missing from the README: {sorted(set(exports) - set(documented))}; "
        f"not exported: {sorted(set(documented) - set(exports))}")
    for name, labels in exports.items():
        if labels:  # a family with samples: its real label names
            assert set(documented[name]) == labels, name


def test_the_readme_gives_every_label_value_the_code_can_export(app):
    body = scrape(app)
    entries = {name: e for e in readme_entries() for name in e.labels}
    for (name, label), values in FIXED_VALUES.items():
        assert label in entries[name].labels[name], (name, label)
        assert entries[name].values == set(values), name
        seen = {s.labels[label] for f in text_string_to_metric_families(body)
                for s in f.samples if s.name == name and label in s.labels}
        assert seen <= set(values) | {"other"}, (name, seen)
