"""confluent-kafka-python 1.7.0 (librdkafka 2.0.2): create a 3-partition topic, produce with each codec and
acks=all, check that a key always lands on the same partition, read everything back with assign()."""
import os
import sys
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
topic = "ckp-" + uuid.uuid4().hex[:8]

admin = AdminClient({"bootstrap.servers": bootstrap})
for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
    future.result(30)
partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
if sorted(partitions) != [0, 1, 2]:
    sys.exit(f"partitions {sorted(partitions)}")

delivered = []
for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": codec})
    for i in range(20):
        producer.produce(topic, key=f"key-{i % 5}", value=f"{codec}-{i}",
                         on_delivery=lambda err, msg: delivered.append((err, msg.key(), msg.partition(), msg.offset())))
    producer.flush(30)
errors = [d for d in delivered if d[0] is not None]
if errors or len(delivered) != 100:
    sys.exit(f"delivery errors {errors[:3]}, delivered {len(delivered)}")
by_key = {}
for _, key, partition, _ in delivered:
    by_key.setdefault(key, set()).add(partition)
if any(len(p) != 1 for p in by_key.values()):
    sys.exit(f"a key went to several partitions: {by_key}")

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
got = []
while len(got) < 100:
    message = consumer.poll(10)
    if message is None:
        break
    if message.error():
        sys.exit(f"consume error {message.error()}")
    got.append((message.partition(), message.offset(), message.key(), message.value()))
consumer.close()
if sorted((p, o) for p, o, _, _ in got) != sorted((p, o) for _, _, p, o in delivered):
    sys.exit(f"consumed {len(got)} records that differ from the {len(delivered)} delivered")
for partition in range(3):
    offsets = [o for p, o, _, _ in got if p == partition]
    if offsets != sorted(offsets) or offsets != list(range(len(offsets))):
        sys.exit(f"partition {partition} offsets out of order: {offsets}")
