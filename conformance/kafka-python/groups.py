"""kafka-python 2.0.2 consumer groups (classic protocol, its own range assignor): two consumers share a topic's
partitions, every message read once; commit, close, and a new consumer in the group resumes after the commit."""
import os
import sys
import threading
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
run = uuid.uuid4().hex[:8]
topic, group = f"kpy-groups-{run}", f"kpy-group-{run}"
KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")


def member():
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)


# kafka-python's poll() blocks while its group rebalances, so each member polls on its own thread.
seen, lock, stop = {}, threading.Lock(), threading.Event()
members = {"a": member(), "b": member()}


def poll(name, consumer):
    while not stop.is_set():
        for tp, records in consumer.poll(timeout_ms=100).items():
            with lock:
                for record in records:
                    seen.setdefault(int(record.value), []).append((name, tp.partition))


threads = [threading.Thread(target=poll, args=item) for item in members.items()]
for t in threads:
    t.start()
a, b = members["a"], members["b"]

# The records are sent only once the group has settled (both members hold disjoint partitions covering the topic,
# and the broker describes the group as Stable with two members), so no rebalance can hand a record to both.
admin = KafkaAdminClient(bootstrap_servers=bootstrap)
deadline = time.time() + 60
while True:
    held = sorted(tp.partition for tp in a.assignment() | b.assignment())
    if a.assignment() and b.assignment() and not (a.assignment() & b.assignment()) and held == [0, 1, 2, 3]:
        described = admin.describe_consumer_groups([group])[0]
        if described.state == "Stable" and len(described.members) == 2:
            break
    if time.time() > deadline:
        sys.exit(f"the group did not settle: a={a.assignment()} b={b.assignment()}")
    time.sleep(0.1)
admin.close()
for i in range(40):
    producer.send(topic, value=b"%d" % i, partition=i % 4)
producer.flush()

deadline = time.time() + 60
while time.time() < deadline:
    with lock:
        if len(seen) == 40:
            break
    time.sleep(0.1)
stop.set()
for t in threads:
    t.join()
owned = sorted(tp.partition for tp in a.assignment() | b.assignment())
if owned != [0, 1, 2, 3] or a.assignment() & b.assignment():
    sys.exit(f"assignments a={a.assignment()} b={b.assignment()}")
if sorted(seen) != list(range(40)):
    sys.exit(f"read {len(seen)} distinct values of 40")
twice = {v: readers for v, readers in seen.items() if len(readers) != 1}
if twice:
    sys.exit(f"read more than once: {dict(list(twice.items())[:5])}")
readers_of = {}
for readers in seen.values():
    for name, partition in readers:
        readers_of.setdefault(partition, set()).add(name)
if any(len(names) != 1 for names in readers_of.values()) or {next(iter(n)) for n in readers_of.values()} != {"a", "b"}:
    sys.exit(f"partitions were not split between the members: {readers_of}")
a.commit()
b.commit()
a.close()
b.close()

for i in range(40, 44):
    producer.send(topic, value=b"%d" % i, partition=i % 4)
producer.flush()
producer.close()
c = member()
after = []
for _ in range(100):
    for records in c.poll(timeout_ms=200).values():
        after.extend(int(r.value) for r in records)
    if len(after) >= 4:
        break
c.close()
if sorted(after) != [40, 41, 42, 43]:
    sys.exit(f"after restart read {sorted(after)}")
