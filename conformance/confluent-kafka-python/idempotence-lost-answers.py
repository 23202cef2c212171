"""confluent-kafka-python 1.7.0 (librdkafka 2.0.2) when produce answers are lost: the broker appended the batch, the
client never heard and sends it again on a new connection. An idempotent producer's retry carries the same producer id
and sequence, so every message is stored once and in order; the same loss makes a plain producer store duplicates,
which shows the retries really happen.

The loss is injected by a proxy between client and broker that, for every third Produce request, forwards the request
and then drops its answer and both connections. The client must reach every broker through the proxy, so this script
starts a broker of its own whose advertised listener is the proxy (the shared broker advertises its own address)."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LosingProxy:
    """Forwards 127.0.0.1:listen to 127.0.0.1:target; loses the answer of every `every`-th Produce while armed."""

    def __init__(self, listen, target, every):
        self.target, self.every = target, every
        self.lock = threading.Lock()
        self.produces = 0
        self.lost = 0
        self.armed = False
        self.server = socket.create_server(("127.0.0.1", listen))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            broker = socket.create_connection(("127.0.0.1", self.target))
            produce_ids = set()
            threading.Thread(target=self.requests, args=(client, broker, produce_ids), daemon=True).start()
            threading.Thread(target=self.answers, args=(broker, client, produce_ids), daemon=True).start()

    @staticmethod
    def frame(sock):
        head = LosingProxy.exactly(sock, 4)
        if head is None:
            return None
        body = LosingProxy.exactly(sock, struct.unpack(">i", head)[0])
        return None if body is None else head + body

    @staticmethod
    def exactly(sock, n):
        data = b""
        while len(data) < n:
            try:
                chunk = sock.recv(n - len(data))
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    @staticmethod
    def close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def requests(self, client, broker, produce_ids):
        while (frame := self.frame(client)) is not None:
            api_key, _, correlation = struct.unpack(">hhi", frame[4:12])
            if api_key == 0:
                produce_ids.add(correlation)
            try:
                broker.sendall(frame)
            except OSError:
                break
        self.close(client, broker)

    def answers(self, broker, client, produce_ids):
        while (frame := self.frame(broker)) is not None:
            correlation = struct.unpack(">i", frame[4:8])[0]
            if correlation in produce_ids:
                with self.lock:
                    self.produces += 1
                    lose = self.armed and self.produces % self.every == 1
                    self.lost += lose
                if lose:
                    break  # appended by the broker, never heard of by the client
            try:
                client.sendall(frame)
            except OSError:
                break
        self.close(client, broker)


broker_port, proxy_port = free_port(), free_port()
data = tempfile.mkdtemp(prefix="ckp-lost-")
broker = subprocess.Popen(
    [os.path.join(root, "osprey"), "start", "--data-dir", data, "--listeners", f"PLAINTEXT://127.0.0.1:{broker_port}",
     "--advertised-listeners", f"PLAINTEXT://127.0.0.1:{proxy_port}"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    for line in broker.stdout:
        if line.startswith("Press Ctrl+C"):
            break
    else:
        sys.exit("the broker for this scenario did not start")
    threading.Thread(target=lambda: [None for _ in broker.stdout], daemon=True).start()
    proxy = LosingProxy(proxy_port, broker_port, every=3)
    bootstrap = f"127.0.0.1:{proxy_port}"
    run = uuid.uuid4().hex[:8]
    idempotent_topic, plain_topic = f"ckp-lost-idem-{run}", f"ckp-lost-plain-{run}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in (idempotent_topic, plain_topic)]).values():
        future.result(30)

    def produce(topic, idempotent):
        """Sends 10 batches of 20 messages one after the other (each flushed); returns the delivery reports."""
        delivered = []
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": idempotent, "acks": "all", "linger.ms": 0,
                             "retries": 10, "retry.backoff.ms": 50, "max.in.flight.requests.per.connection": 1,
                             "socket.timeout.ms": 10000, "message.timeout.ms": 60000})
        for batch in range(10):
            for i in range(20):
                value = batch * 20 + i
                producer.produce(topic, partition=0, value=b"%d" % value,
                                 on_delivery=lambda err, msg: delivered.append((err, msg.offset(), int(msg.value()))))
            producer.flush(60)
        return delivered

    proxy.armed = True
    reports = produce(idempotent_topic, idempotent=True)
    lost_idempotent = proxy.lost
    if lost_idempotent == 0:
        sys.exit("no produce answer was lost: the injection did not happen")
    if len(reports) != 200 or any(err is not None for err, _, _ in reports):
        sys.exit(f"idempotent producer: {len(reports)} reports, errors {[r for r in reports if r[0]][:3]}")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    low, high = consumer.get_watermark_offsets(TopicPartition(idempotent_topic, 0), timeout=10)
    if (low, high) != (0, 200):
        sys.exit(f"idempotent producer with {lost_idempotent} lost answers stored offsets {low}..{high}, expected 0..200 (each message once)")
    consumer.assign([TopicPartition(idempotent_topic, 0, 0)])
    values = []
    deadline = time.time() + 30
    while len(values) < 200 and time.time() < deadline:
        message = consumer.poll(1)
        if message is not None and not message.error():
            values.append(int(message.value()))
    if values != list(range(200)):
        sys.exit(f"idempotent producer: stored values out of order or missing: {values[:10]}... ({len(values)})")
    if sorted(offset for _, offset, _ in reports) != list(range(200)):
        sys.exit("idempotent producer: delivery reports do not name offsets 0..199")

    # The control: the same losses make a plain producer's retries store batches twice.
    proxy.produces = 0
    lost_before = proxy.lost
    produce(plain_topic, idempotent=False)
    _, plain_high = consumer.get_watermark_offsets(TopicPartition(plain_topic, 0), timeout=10)
    if proxy.lost == lost_before:
        sys.exit("the control lost no answer: the injection did not happen")
    if plain_high <= 200:
        sys.exit(f"a plain producer with {proxy.lost - lost_before} lost answers stored {plain_high} records: no retry wrote a duplicate")
    consumer.close()
    print(f"idempotent: {lost_idempotent} answers lost, 200 stored once; plain: {proxy.lost - lost_before} lost, {plain_high} stored")
finally:
    broker.terminate()
    try:
        broker.wait(30)
    except subprocess.TimeoutExpired:
        broker.kill()
    subprocess.run(["rm", "-rf", data])
