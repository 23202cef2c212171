"""confluent-kafka-python 1.7.0 (librdkafka 2.0.2) exactly-once copier: a consume-transform-produce loop with a
transactional producer and send_offsets_to_transaction is killed with SIGKILL at random points and restarted,
several times; in the end the output topic read with read_committed holds every input record exactly once, in
order per partition, and aborted attempts are invisible. Also: an aborted transaction is visible only to
read_uncommitted consumers. COPIER_RECORDS and COPIER_RESTARTS (defaults 600 and 4) make a longer run; the last
line reports the counts."""
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
run = uuid.uuid4().hex[:8]
source, sink, group, txn_id = f"eos-in-{run}", f"eos-out-{run}", f"eos-copier-{run}", f"eos-copier-{run}"
admin = AdminClient({"bootstrap.servers": bootstrap})
for future in admin.create_topics([NewTopic(source, 3, 1), NewTopic(sink, 3, 1)]).values():
    future.result()

total = int(os.environ.get("COPIER_RECORDS", "600"))
restarts = int(os.environ.get("COPIER_RESTARTS", "4"))
pause = max(0.02, restarts * 5.0 / (total / 10) * 0.75)  # the input arrives while copiers come and go


def feed():
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(total):
        producer.produce(source, value=b"%d" % i, partition=i % 3)
        if i % 10 == 9:
            producer.flush()
            time.sleep(pause)
    producer.flush()


feeder = threading.Thread(target=feed)
feeder.start()

COPIER = f"""
import sys
import time
from confluent_kafka import Consumer, Producer, TopicPartition
consumer = Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "{group}", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}})
producer = Producer({{"bootstrap.servers": "{bootstrap}", "transactional.id": "{txn_id}", "transaction.timeout.ms": 10000}})
producer.init_transactions(30)
consumer.subscribe(["{source}"])
while True:
    messages = consumer.consume(20, 0.5)
    messages = [m for m in messages if m.error() is None]
    if not messages:
        continue
    producer.begin_transaction()
    for m in messages:
        producer.produce("{sink}", value=b"copy-" + m.value(), partition=m.partition())
    if len(sys.argv) > 1:  # the incarnation to be killed mid-transaction: its copies are on the broker, uncommitted
        producer.flush(30)
        print("mid", flush=True)
        time.sleep(60)
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    print("committed", len(messages), flush=True)
"""


def read_all(isolation, expect, seconds=60):
    """The sink from its start to its end (high watermark, or last stable offset for read_committed): until every
    partition reports EOF with nothing after it. No quiet window, so 'nothing more' does not depend on waiting."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"eos-check-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": isolation, "enable.partition.eof": True})
    c.subscribe([sink])
    values, at_end, deadline = [], set(), time.time() + seconds
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error() is not None:
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                if len(at_end) == 3 and len(values) >= expect:
                    break
            continue
        values.append((m.partition(), m.value().decode()))
        at_end.discard(m.partition())
    c.close()
    return values


# The first copier is killed in the middle of a transaction for certain: once its copies are written but not
# committed (it says "mid" and waits). The others are killed at random points: before they joined, between
# transactions, in the middle of one.
first = subprocess.Popen([sys.executable, "-c", COPIER, "mid"], stdout=subprocess.PIPE, text=True)
ready, _, _ = select.select([first.stdout], [], [], 90)
said = first.stdout.readline().strip() if ready else "(nothing within 90 s)"
os.kill(first.pid, signal.SIGKILL)
first.wait()
if said != "mid":
    sys.exit(f"the first copier ended before it was in a transaction (said {said!r})")
random.seed(run)
for _ in range(restarts - 1):
    child = subprocess.Popen([sys.executable, "-c", COPIER], stdout=subprocess.DEVNULL)
    time.sleep(random.uniform(2.0, 8.0))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
feeder.join()

# The last incarnation finishes the work.
child = subprocess.Popen([sys.executable, "-c", COPIER], stdout=subprocess.DEVNULL)
try:
    out = read_all("read_committed", total, seconds=120)
finally:
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

values = [v for _, v in out]
if sorted(values) != sorted(f"copy-{i}" for i in range(total)):
    missing = set(f"copy-{i}" for i in range(total)) - set(values)
    dupes = len(values) - len(set(values))
    sys.exit(f"read_committed saw {len(values)} records, {len(missing)} missing, {dupes} duplicates")
for p in range(3):
    order = [int(v[5:]) for part, v in out if part == p]
    if order != sorted(order):
        sys.exit(f"partition {p} is out of order")

# The copies of the transaction killed mid-way were written and then aborted (by the next incarnation's
# init_transactions, or the coordinator's timeout): read_uncommitted sees them, read_committed did not.
uncommitted = [v for _, v in read_all("read_uncommitted", total + 1)]
if len(uncommitted) <= len(values):
    sys.exit(f"read_uncommitted saw {len(uncommitted)} records, no more than read_committed's {len(values)}: the kill mid-transaction left nothing to abort")

# An aborted transaction: invisible to read_committed, visible to read_uncommitted.
tx = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"eos-abort-{run}"})
tx.init_transactions(30)
tx.begin_transaction()
tx.produce(sink, value=b"aborted", partition=0)
tx.flush()
tx.abort_transaction(30)
if any(v == "aborted" for _, v in read_all("read_committed", total)):
    sys.exit("read_committed saw an aborted record")
if not any(v == "aborted" for _, v in read_all("read_uncommitted", total + 1)):
    sys.exit("read_uncommitted did not see the aborted record")
print(f"records in {total}, records out {len(values)} (each exactly once, in order per partition), copier incarnations killed {restarts} (one mid-transaction: {len(uncommitted) - len(values)} aborted copies seen only by read_uncommitted)")
