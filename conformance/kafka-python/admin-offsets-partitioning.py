"""kafka-python 2.0.2: KafkaAdminClient creates a topic with configs, describes them, adds partitions and deletes
it; beginning/end offsets and offsets_for_times; keys land where kafka-python's murmur2 partitioner (Kafka's
default) puts them, whether kafka-python or the osprey CLI produced them."""
import os
import subprocess
import sys
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.partitioner.default import murmur2

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
osprey = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "osprey")
topic = "kpy-" + uuid.uuid4().hex[:8]

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1, topic_configs={"retention.ms": "86400000"})])
described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
entries = {e[0]: e[1] for e in described[0].resources[0][4]}
if entries.get("retention.ms") != "86400000" or entries.get("cleanup.policy") != "delete":
    sys.exit(f"describe_configs: retention.ms={entries.get('retention.ms')} cleanup.policy={entries.get('cleanup.policy')}")

keys = [b"user-%d" % i for i in range(40)]
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
sent = [producer.send(topic, key=k, value=b"v-" + k, timestamp_ms=2_000_000 + i).get(timeout=30) for i, k in enumerate(keys)]
producer.close()
for key, meta in zip(keys, sent):
    if meta.partition != (murmur2(key) & 0x7FFFFFFF) % 4:
        sys.exit(f"kafka-python put {key} on partition {meta.partition}")

lines = "".join(f"{k.decode()}:cli-{k.decode()}\n" for k in keys)
cli = subprocess.run([osprey, "produce", topic, "--key-separator", ":", "-b", bootstrap], input=lines, text=True, capture_output=True, timeout=300)
if cli.returncode != 0:
    sys.exit(f"osprey produce failed: {cli.stderr}")

consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
partitions = [TopicPartition(topic, p) for p in range(4)]
consumer.assign(partitions)
consumer.seek_to_beginning()
where, count = {}, 0
for message in consumer:
    where.setdefault(message.key, set()).add(message.partition)
    count += 1
    if count == 80:
        break
if count != 80:
    sys.exit(f"read {count} of 80 records")
if any(len(p) != 1 for p in where.values()) or len(where) != len(keys):
    sys.exit(f"a key is on several partitions (the CLI and kafka-python disagree): {[(k, p) for k, p in where.items() if len(p) != 1][:3]}")

begin, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
if sum(end[tp] - begin[tp] for tp in partitions) != 80:
    sys.exit(f"watermarks {begin} {end}")
found = consumer.offsets_for_times({TopicPartition(topic, sent[10].partition): 2_000_010})
if found[TopicPartition(topic, sent[10].partition)].offset != sent[10].offset:
    sys.exit(f"offsets_for_times {found}, expected offset {sent[10].offset}")
consumer.close()

admin.create_partitions({topic: NewPartitions(total_count=6)})
admin.delete_topics([topic])
admin.close()
