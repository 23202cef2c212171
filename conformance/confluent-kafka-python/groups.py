"""confluent-kafka-python 1.7.0 (librdkafka 2.0.2) consumer groups: five consumers on four partitions leave exactly
one idle and own each partition once (range, roundrobin and cooperative-sticky); a member that leaves hands its
partitions on within seconds; one killed with SIGKILL loses them after its session timeout; two groups each get
every message; commit, close, restart resumes right after the commit."""
import os
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
run = uuid.uuid4().hex[:8]
topic = f"ckp-groups-{run}"
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)

producer = Producer({"bootstrap.servers": bootstrap})
def produce(start, count):
    for i in range(start, start + count):
        producer.produce(topic, partition=i % 4, value=b"%d" % i)
    producer.flush(30)
produce(0, 40)


def consumer(group, strategy="range", **extra):
    config = {"bootstrap.servers": bootstrap, "group.id": group, "partition.assignment.strategy": strategy,
              "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    config.update(extra)
    return Consumer(config)


def settle(members, seconds=60):
    """Polls every member until all four partitions are owned and the assignment holds still for 2 s."""
    deadline, last, since = time.time() + seconds, None, time.time()
    while time.time() < deadline:
        for m in members:
            m.poll(0.05)
        now = sorted((i, tp.partition) for i, m in enumerate(members) for tp in m.assignment())
        if now != last:
            last, since = now, time.time()
        elif time.time() - since > 2 and len(now) == 4:
            return now
    sys.exit(f"the group did not settle: {last}")


for strategy in ["range", "roundrobin", "cooperative-sticky"]:
    group = f"five-{strategy}-{run}"
    members = [consumer(group, strategy) for _ in range(5)]
    for m in members:
        m.subscribe([topic])
    owned = settle(members)
    if sorted(p for _, p in owned) != [0, 1, 2, 3] or len({i for i, _ in owned}) != 4:
        sys.exit(f"{strategy}: assignment {owned}")
    leaver = next(i for i, _ in owned)
    members[leaver].close()
    started = time.time()
    rest = [m for i, m in enumerate(members) if i != leaver]
    owned = settle(rest)
    if sorted(p for _, p in owned) != [0, 1, 2, 3] or time.time() - started > 20:
        sys.exit(f"{strategy}: after a member left: {owned} in {time.time() - started:.1f} s")
    for m in rest:
        m.close()

# A member killed with SIGKILL: its partitions move after the session timeout.
group = f"crash-{run}"
child = subprocess.Popen([sys.executable, "-c", f"""
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "{group}", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"}})
c.subscribe(["{topic}"])
import time
while True:
    c.poll(0.1)
    if c.assignment():
        print("assigned", flush=True)
"""], stdout=subprocess.PIPE, text=True)
child.stdout.readline()
survivor = consumer(group)
survivor.subscribe([topic])
deadline = time.time() + 30
while len(survivor.assignment()) + 0 < 1 and time.time() < deadline:
    survivor.poll(0.1)
os.kill(child.pid, signal.SIGKILL)
child.wait()
killed_at = time.time()
while len(survivor.assignment()) < 4 and time.time() < killed_at + 60:
    survivor.poll(0.1)
if len(survivor.assignment()) != 4:
    sys.exit(f"after SIGKILL the survivor owns {survivor.assignment()}")
survivor.close()

# Two groups each receive every message.
for name in ["audit", "billing"]:
    c = consumer(f"{name}-{run}")
    c.subscribe([topic])
    seen, deadline = set(), time.time() + 30
    while len(seen) < 40 and time.time() < deadline:
        message = c.poll(0.2)
        if message is not None and not message.error():
            seen.add(int(message.value()))
    c.close()
    if seen != set(range(40)):
        sys.exit(f"group {name} saw {len(seen)} of 40")

# Commit, close, restart: resume exactly after the commit.
group = f"resume-{run}"
c = consumer(group)
c.subscribe([topic])
seen, deadline = [], time.time() + 30
while len(seen) < 40 and time.time() < deadline:
    message = c.poll(0.2)
    if message is not None and not message.error():
        seen.append(int(message.value()))
c.commit(asynchronous=False)
c.close()
produce(40, 8)
c = consumer(group)
c.subscribe([topic])
after, deadline = [], time.time() + 30
while len(after) < 8 and time.time() < deadline:
    message = c.poll(0.2)
    if message is not None and not message.error():
        after.append(int(message.value()))
c.close()
if sorted(after) != list(range(40, 48)):
    sys.exit(f"after restart read {sorted(after)}, expected 40..47")
