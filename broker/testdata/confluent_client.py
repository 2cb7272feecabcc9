"""confluent-kafka-python (librdkafka) against a Spool broker.

Usage: python3 confluent_client.py BOOTSTRAP TOPIC
Admin create/describe, keyed produce with headers in every codec, consume
from the beginning to the end, watermarks and offsets for times. Prints OK
and exits 0 when every check passes; otherwise raises.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})

fs = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                   config={"retention.ms": "3600000"})])
fs[topic].result(timeout=20)
dup = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
try:
    dup[topic].result(timeout=20)
    raise AssertionError("creating an existing topic succeeded")
except KafkaException as e:
    assert e.args[0].name() == "TOPIC_ALREADY_EXISTS", e

md = admin.list_topics(timeout=20)
assert topic in md.topics and len(md.topics[topic].partitions) == 2, md.topics
cfg = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
entries = list(cfg.values())[0].result(timeout=20)
assert entries["retention.ms"].value == "3600000", entries["retention.ms"]

base_ts = int(time.time() * 1000) - 60_000
sent = []
for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                  "acks": "all", "enable.idempotence": False, "linger.ms": 5})
    errors = []
    for i in range(20):
        key, value = f"k{i % 3}", f"{codec}-{i}"
        p.produce(topic, key=key, value=value, partition=i % 2,
                  headers=[("codec", codec.encode())], timestamp=base_ts + len(sent),
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        sent.append((i % 2, key, value, codec))
    assert p.flush(20) == 0, "messages left unflushed"
    assert not errors, errors

c = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-assign",
              "enable.auto.commit": False, "enable.partition.eof": True,
              "auto.offset.reset": "earliest"})
c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
got, eof = [], set()
deadline = time.time() + 20
while len(eof) < 2 and time.time() < deadline:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        if m.error().code() == -191:  # _PARTITION_EOF
            eof.add(m.partition())
            continue
        raise KafkaException(m.error())
    got.append((m.partition(), m.key().decode(), m.value().decode(), dict(m.headers())["codec"].decode()))
assert len(eof) == 2, "did not reach the end of both partitions"
for part in (0, 1):
    want = [s for s in sent if s[0] == part]
    have = [g for g in got if g[0] == part]
    assert have == want, (part, have[:3], want[:3])

lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=20)
assert (lo, hi) == (0, 50), (lo, hi)
# Record index 10 (partition 0, the 6th record there) has timestamp base+10.
res = c.offsets_for_times([TopicPartition(topic, 0, base_ts + 10)], timeout=20)
assert res[0].offset == 5, res
c.close()
print("OK")
