# confluent-kafka-python (librdkafka) with SASL SCRAM over TLS against a
# Spool listener: produce, consume back; then a wrong password must fail.
# Usage: confluent_scram.py ADDR TOPIC USER PASSWORD MECHANISM CA_FILE
import sys
from confluent_kafka import Producer, Consumer, KafkaException

addr, topic, user, password, mech, ca = sys.argv[1:7]
base = {
    "bootstrap.servers": addr,
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": mech,
    "sasl.username": user,
    "sasl.password": password,
    "ssl.ca.location": ca,
}

errors = []
p = Producer(dict(base, **{"acks": "all", "enable.idempotence": True}))
for i in range(5):
    p.produce(topic, key=b"k%d" % i, value=b"scram-%d" % i, on_delivery=lambda err, msg: err and errors.append(err))
if p.flush(20) != 0 or errors:
    print("produce failed:", errors)
    sys.exit(1)

c = Consumer(dict(base, **{"group.id": "py-scram", "auto.offset.reset": "earliest"}))
c.subscribe([topic])
got = []
for _ in range(100):
    m = c.poll(0.5)
    if m is None:
        if len(got) >= 5:
            break
        continue
    if m.error():
        print("consume error:", m.error())
        sys.exit(1)
    got.append(m.value())
    if len(got) >= 5:
        break
c.close()
if sorted(got) != [b"scram-%d" % i for i in range(5)]:
    print("consumed", got)
    sys.exit(1)

# A wrong password: the client reports an authentication error.
seen = []
bad = Producer(dict(base, **{"sasl.password": "wrong", "error_cb": lambda e: seen.append(e)}))
bad.poll(5)
if not any(e.code() == -169 or "Authentication" in str(e) or "SASL" in str(e) for e in seen):  # _AUTHENTICATION
    print("wrong password not reported:", seen)
    sys.exit(1)
print("OK")
