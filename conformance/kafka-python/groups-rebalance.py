"""kafka-python 2.0.2 rebalancing: five consumers on four partitions leave exactly one idle and own each partition
once (range and roundrobin assignors); a member that leaves hands its partitions on within seconds."""
import os
import sys
import threading
import time
import uuid

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
run = uuid.uuid4().hex[:8]
topic = f"kpy-rebalance-{run}"
KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])


class Member:
    """A consumer polling on its own thread (kafka-python's poll() blocks while its group rebalances)."""

    def __init__(self, group, assignor):
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                      session_timeout_ms=6000, heartbeat_interval_ms=300,
                                      partition_assignment_strategy=[assignor])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.consumer.poll(timeout_ms=100)

    def owned(self):
        return {tp.partition for tp in self.consumer.assignment()}

    def close(self):
        self.stop.set()
        self.thread.join()
        self.consumer.close()


def settle(members, expect_idle, seconds=60):
    """Waits until the members together own all four partitions, each once, and it stays so for two seconds."""
    deadline, last, since = time.time() + seconds, None, time.time()
    while time.time() < deadline:
        owned = [m.owned() for m in members]
        flat = sorted(p for o in owned for p in o)
        if flat != [0, 1, 2, 3] or sum(1 for o in owned if not o) != expect_idle:
            last = None
        elif owned != last:
            last, since = owned, time.time()
        elif time.time() - since > 2:
            return owned
        time.sleep(0.1)
    sys.exit(f"no settled assignment: {[m.owned() for m in members]}")


for name, assignor in [("range", RangePartitionAssignor), ("roundrobin", RoundRobinPartitionAssignor)]:
    members = [Member(f"kpy-five-{name}-{run}", assignor) for _ in range(5)]
    owned = settle(members, expect_idle=1)
    leaver = next(i for i, o in enumerate(owned) if 0 in o)
    members[leaver].close()
    started = time.time()
    rest = [m for i, m in enumerate(members) if i != leaver]
    settle(rest, expect_idle=0)
    if time.time() - started > 20:
        sys.exit(f"{name}: the leaver's partitions took {time.time() - started:.1f} s to move")
    for m in rest:
        m.close()
