"""kafka-python 2.0.2 (pure Python, older protocol versions): produce keyed messages with acks=all to a new
topic (auto-created), then read them back with an assigned consumer: exact values, keys, order and offsets."""
import os
import sys
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
topic = "kafka-python-" + uuid.uuid4().hex[:8]

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip", linger_ms=5)
futures = [producer.send(topic, key=b"k%d" % (i % 3), value=b"value-%d" % i) for i in range(50)]
offsets = [f.get(timeout=30).offset for f in futures]
producer.flush()
producer.close()
if offsets != list(range(50)):
    sys.exit(f"offsets: {offsets}")

consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
tp = TopicPartition(topic, 0)
consumer.assign([tp])
consumer.seek_to_beginning(tp)
got = []
for message in consumer:
    got.append((message.offset, message.key, message.value))
    if len(got) == 50:
        break
consumer.close()
expected = [(i, b"k%d" % (i % 3), b"value-%d" % i) for i in range(50)]
if got != expected:
    sys.exit(f"consumed {got[:5]}... ({len(got)}), expected {expected[:5]}...")
