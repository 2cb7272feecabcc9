"""librdkafka consumers that start together share the first generation.

Usage: python3 confluent_group_start.py BOOTSTRAP TOPIC STRATEGY [STATIC]
Two confluent-kafka-python (librdkafka) consumers in one group subscribe to
TOPIC (4 partitions) half a second apart, with
partition.assignment.strategy STRATEGY (cooperative-sticky or range) and,
with STATIC, group.instance.id set (static membership). The broker's
group.initial.rebalance.delay.ms makes them share the first generation, so
each gets its 2 partitions in one assign callback and nothing is revoked:
what librdkafka's tests 0113 (cooperative-sticky: "3 assign calls, expected
1") and 0102 (static membership: "unexpected revoke") check. Prints the
counts, then OK, and exits 0 when they hold; otherwise raises.
"""
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, strategy = sys.argv[1], sys.argv[2], sys.argv[3]
static = len(sys.argv) > 4
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(timeout=20)

consumers, calls = [], []
for i in range(2):
    stats = {"assign": 0, "revoke": 0, "owned": set()}
    conf = {"bootstrap.servers": bootstrap, "group.id": topic + "-group",
            "partition.assignment.strategy": strategy, "session.timeout.ms": 6000,
            "auto.offset.reset": "earliest"}
    if static:
        conf["group.instance.id"] = f"member-{i}"
    c = Consumer(conf)

    def on_assign(c, parts, stats=stats):
        stats["assign"] += 1
        stats["owned"] |= {p.partition for p in parts}
        if strategy == "cooperative-sticky":
            c.incremental_assign(parts)
        else:
            c.assign(parts)

    def on_revoke(c, parts, stats=stats):
        if parts:
            stats["revoke"] += 1
        stats["owned"] -= {p.partition for p in parts}
        if strategy == "cooperative-sticky":
            c.incremental_unassign(parts)
        else:
            c.unassign()

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    consumers.append(c)
    calls.append(stats)
    if i == 0:
        # The second starts half a second later (the scenario, not a
        # synchronisation): the first has joined by then, and without the
        # broker's delay its generation would complete alone.
        until = time.time() + 0.5
        while time.time() < until:
            c.poll(0.05)

deadline = time.time() + 60
while time.time() < deadline and not all(len(s["owned"]) == 2 for s in calls):
    for c in consumers:
        c.poll(0.05)
# A little longer: a second rebalance would show up as more calls.
settle = time.time() + 2
while time.time() < settle:
    for c in consumers:
        c.poll(0.05)
# Counted before close, which revokes everything.
result = [{"assign": s["assign"], "revoke": s["revoke"], "owned": sorted(s["owned"])} for s in calls]
for c in consumers:
    c.close()
print(result)
for i, s in enumerate(result):
    assert len(s["owned"]) == 2, f"consumer {i} owns {sorted(s['owned'])}, want 2 of 4 partitions"
    assert s["assign"] == 1, f"consumer {i}: {s['assign']} assign calls, want 1"
    assert s["revoke"] == 0, f"consumer {i}: {s['revoke']} revokes, want 0"
print("OK")
