"""Queue figures and backlogs for /metrics, read from Redis when Prometheus scrapes.

They are the same figures as the supervisors' live queues page (admin/live_queues.py), so a
dashboard and an alert never disagree. Computed per scrape, they are right whichever web
process answers and need no multiprocess files. Queues are the configured ones, those named
by live flows, and those with state in Redis (bounded by live_queues.MAX_QUEUES).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .admin.live_queues import all_queues

log = logging.getLogger("ivr_server.metrics")
# The estimate's `stat` label: the figure a caller joining now would be told, and its 80 %
# interval, by the key live_queues gives each.
ESTIMATE_STATS = {"expected": "seconds", "p10": "p10", "p90": "p90"}


class QueueCollector(Collector):
    """Waiting now, longest wait, agents on duty, in service, and a new caller's estimate."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ivr_queue_state_up",
                               "1 when the live queue state could be read from Redis")
        waiting = GaugeMetricFamily("ivr_queue_waiting_calls", "Callers waiting now",
                                    labels=["queue"])
        longest = GaugeMetricFamily("ivr_queue_longest_wait_seconds",
                                    "How long the caller at the head of the line has waited "
                                    "(0 when nobody waits)", labels=["queue"])
        agents = GaugeMetricFamily("ivr_queue_agents_on_duty",
                                   "Agents on duty (queues with a known count only)",
                                   labels=["queue"])
        in_service = GaugeMetricFamily("ivr_queue_in_service_calls",
                                       "Callers with an agent now", labels=["queue"])
        estimate = GaugeMetricFamily("ivr_queue_wait_estimate_seconds",
                                     "What a caller joining now would be told: the expected "
                                     "wait and its 80 % interval (p10, p90)",
                                     labels=["queue", "stat"])
        try:
            queues = all_queues(self.services, self.services.clock())
        except Exception as exc:  # noqa: BLE001 - a scrape reports the failure, never a 500
            log.warning("metrics: live queue state unavailable: %s", exc)
            queues, ok = [], False
        else:
            ok = all(q.error is None for q in queues)
        up.add_metric([], 1.0 if ok else 0.0)
        for q in queues:
            if q.error is not None:
                continue
            waiting.add_metric([q.name], q.waiting)
            longest.add_metric([q.name], q.longest_seconds or 0.0)
            in_service.add_metric([q.name], q.in_service)
            if q.agents is not None:
                agents.add_metric([q.name], q.agents)
            if q.estimate is not None:
                for stat, key in ESTIMATE_STATS.items():
                    estimate.add_metric([q.name, stat], q.estimate[key])
        yield from (up, waiting, longest, agents, in_service, estimate)


class BacklogCollector(Collector):
    """What waits for the database: call-log records and text webhooks kept through an
    outage. Growing means the database is away (or slow); an alert watches it drain."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        records = GaugeMetricFamily("ivr_calllog_backlog_records",
                                    "Call-log records queued in Redis, not yet in SQL")
        texts = GaugeMetricFamily("ivr_sms_deferred_webhooks",
                                  "Text webhooks kept through an outage, not yet applied")
        dead = GaugeMetricFamily("ivr_sms_deferred_dead_webhooks",
                                 "Kept text webhooks set aside after failing for another "
                                 "reason than an outage: for a person to look at")
        s = self.services
        try:
            pipe = s.redis.pipeline(transaction=False)
            pipe.llen(s.calllog.backlog_key)
            pipe.llen(s.sms_deferred.key)
            pipe.llen(s.sms_deferred.dead_key)
            queued, kept, set_aside = pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis away: no figure, never a 500
            log.warning("metrics: backlogs unavailable: %s", exc)
            return
        records.add_metric([], float(queued))
        texts.add_metric([], float(kept))
        dead.add_metric([], float(set_aside))
        yield from (records, texts, dead)
