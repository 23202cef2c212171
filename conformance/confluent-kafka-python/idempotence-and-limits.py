"""confluent-kafka-python 1.7.0 (librdkafka 2.0.2): an idempotent producer (producer id, sequence numbers) gets its
messages stored in send order at offsets 0..n-1 (retries after lost answers, where idempotence matters, are injected
in idempotence-lost-answers.py);
a 1 MB message goes through; a message over the topic's max.message.bytes fails with MSG_SIZE_TOO_LARGE;
LogAppendTime topics stamp records with the broker's time; offsets_for_times finds records by timestamp."""
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
run = uuid.uuid4().hex[:8]
ordered, small, stamped = f"ckp-idem-{run}", f"ckp-small-{run}", f"ckp-lat-{run}"

admin = AdminClient({"bootstrap.servers": bootstrap})
for future in admin.create_topics([
    NewTopic(ordered, num_partitions=2, replication_factor=1),
    NewTopic(small, num_partitions=1, replication_factor=1, config={"max.message.bytes": "10000"}),
    NewTopic(stamped, num_partitions=1, replication_factor=1, config={"message.timestamp.type": "LogAppendTime"}),
]).values():
    future.result(30)

# Idempotent: every message once, in send order, offsets 0..n-1 per partition.
delivered = []
producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2, "batch.num.messages": 50})
for i in range(1000):
    producer.produce(ordered, partition=i % 2, value=b"%d" % i, timestamp=1_600_000_000_000 + i,
                     on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset(), int(msg.value()))))
    if i % 200 == 0:
        producer.poll(0)
producer.flush(60)
if any(d[0] is not None for d in delivered) or len(delivered) != 1000:
    sys.exit(f"idempotent delivery: {len(delivered)} delivered, errors {[d for d in delivered if d[0]][:3]}")
for partition in (0, 1):
    mine = sorted((o, v) for _, p, o, v in delivered if p == partition)
    if [o for o, _ in mine] != list(range(500)) or [v for _, v in mine] != list(range(partition, 1000, 2)):
        sys.exit(f"partition {partition}: offsets or order wrong: {mine[:5]}")

# A 1 MB message, and one over the topic's limit.
big = os.urandom(1_000_000)
results = []
limits = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 3_000_000, "acks": "all"})
limits.produce(ordered, partition=0, value=big, on_delivery=lambda err, msg: results.append(("big", err, msg.offset())))
limits.produce(small, value=b"x" * 20000, on_delivery=lambda err, msg: results.append(("small", err, msg.offset())))
limits.produce(stamped, value=b"stamp me", timestamp=1000, on_delivery=lambda err, msg: results.append(("stamped", err, msg.offset())))
limits.flush(60)
outcome = {name: (err, offset) for name, err, offset in results}
if outcome["big"][0] is not None or outcome["big"][1] != 500:
    sys.exit(f"1 MB message: {outcome['big']}")
if outcome["small"][0] is None or outcome["small"][0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
    sys.exit(f"oversized message: {outcome['small']}")

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False, "fetch.message.max.bytes": 2_000_000})
consumer.assign([TopicPartition(ordered, 0, 500), TopicPartition(stamped, 0, 0)])
seen = {}
deadline = time.time() + 30
while len(seen) < 2 and time.time() < deadline:
    message = consumer.poll(1)
    if message is None:
        continue
    if message.error():
        sys.exit(f"consume error {message.error()}")
    seen[message.topic()] = message
if seen.get(ordered) is None or seen[ordered].value() != big:
    sys.exit("the 1 MB message did not come back intact")
kind, stamp = seen[stamped].timestamp()
if kind != TIMESTAMP_LOG_APPEND_TIME or abs(stamp - time.time() * 1000) > 60_000:
    sys.exit(f"LogAppendTime topic gave timestamp {(kind, stamp)}")

# offsets_for_times: the first record at or after a timestamp; CreateTime kept as produced.
found = consumer.offsets_for_times([TopicPartition(ordered, 1, 1_600_000_000_000 + 501)], 10)
if found[0].offset != 250:  # partition 1 holds the odd values: offset 250 is value 501
    sys.exit(f"offsets_for_times gave {found[0].offset}, expected 250")
consumer.assign([TopicPartition(ordered, 1, 250)])
message = consumer.poll(10)
if message is None or message.timestamp() != (TIMESTAMP_CREATE_TIME, 1_600_000_000_000 + 501) or message.value() != b"501":
    sys.exit(f"record at offset 250: {message and (message.timestamp(), message.value())}")
consumer.close()
