"""Hostile clients on raw sockets: garbage, truncated, oversized and negative-size frames, an unknown API key, an
unsupported version and a corrupt body, and an API the broker does not serve. Each offending connection gets an
error or is closed (an unserved API gets an error answer and stays open); a producer on its
own connection keeps working throughout, the broker stays up, and nothing stored is lost."""
import os
import socket
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

host, port = os.environ["OSPREY_BOOTSTRAP"].rsplit(":", 1)
port = int(port)
topic = "hostile-" + uuid.uuid4().hex[:8]


def connect():
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(10)
    return s


def request(api_key, version, correlation, body=b"", client_id=b"hostile"):
    header = struct.pack(">hhih", api_key, version, correlation, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(s):
    size = b""
    while len(size) < 4:
        chunk = s.recv(4 - len(size))
        if not chunk:
            return None
        size += chunk
    (n,) = struct.unpack(">i", size)
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def closed_by_broker(s):
    """True when the broker closes the connection (no response frame comes first)."""
    try:
        return read_frame(s) is None
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


delivered = []
producer = Producer({"bootstrap.servers": f"{host}:{port}", "acks": "all"})


def produce(start, count):
    for i in range(start, start + count):
        producer.produce(topic, key=b"k%d" % (i % 3), value=b"value-%d" % i, on_delivery=lambda err, msg: delivered.append((err, msg.value())))
    producer.flush(30)


produce(0, 10)
idle = connect()  # an idle connection that must survive everything below

checks = {}
s = connect(); s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); checks["garbage"] = closed_by_broker(s); s.close()
s = connect(); s.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00\x12"); checks["oversized"] = closed_by_broker(s); s.close()
s = connect(); s.sendall(struct.pack(">i", -5)); checks["negative size"] = closed_by_broker(s); s.close()
s = connect(); s.sendall(request(999, 0, 1)); checks["unknown api key"] = closed_by_broker(s); s.close()
s = connect(); s.sendall(request(3, 9, 1, b"\xff\xff\xff")); checks["corrupt metadata body"] = closed_by_broker(s); s.close()
s = connect(); s.sendall(request(0, 99, 1, b"\x00" * 8)); checks["unsupported produce version"] = closed_by_broker(s); s.close()
s = connect(); s.sendall(request(3, 1, 1)[:9]); s.close()
s = connect(); s.sendall(request(18, 0, 11)); frame = read_frame(s); s.close()
checks["answers right after a client hung up mid-frame"] = frame is not None and struct.unpack(">i", frame[:4])[0] == 11
# An API the codec knows but the broker does not serve (SaslHandshake, until security exists): an error answer on a
# connection that stays open, not a silent close.
s = connect(); s.sendall(request(17, 1, 12, struct.pack(">h", 5) + b"PLAIN")); frame = read_frame(s)
checks["unserved api answered UNSUPPORTED_VERSION"] = frame is not None and struct.unpack(">ih", frame[:6]) == (12, 35)
s.sendall(request(18, 0, 13)); frame = read_frame(s); s.close()
checks["connection usable after the unserved api"] = frame is not None and struct.unpack(">i", frame[:4])[0] == 13

# An unsupported ApiVersions version is answered (v0 shape) with UNSUPPORTED_VERSION and the supported ranges.
s = connect()
s.sendall(request(18, 99, 42))
frame = read_frame(s)
s.close()
if frame is None:
    sys.exit("ApiVersions v99 got no answer")
correlation, error, count = struct.unpack(">ihi", frame[:10])
checks["ApiVersions v99 answered"] = correlation == 42 and error == 35 and count > 0

# Pipelined junk after a valid request: the valid one is answered first, then the connection closes.
s = connect()
s.sendall(request(18, 0, 7) + b"\x00\x00\x00\x05junk!")
frame = read_frame(s)
checks["valid request before junk answered"] = frame is not None and struct.unpack(">i", frame[:4])[0] == 7
checks["junk after it closes"] = closed_by_broker(s)
s.close()

failed = [name for name, ok in checks.items() if not ok]
if failed:
    sys.exit(f"not handled as expected: {failed}")

# The idle connection still works, the producer still works, and everything is there.
idle.sendall(request(18, 0, 99))
frame = read_frame(idle)
if frame is None or struct.unpack(">i", frame[:4])[0] != 99:
    sys.exit("the idle connection was disturbed")
idle.close()
produce(10, 10)
if len(delivered) != 20 or any(err is not None for err, _ in delivered):
    sys.exit(f"deliveries: {delivered}")
consumer = Consumer({"bootstrap.servers": f"{host}:{port}", "group.id": "unused", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
values = []
deadline = time.time() + 30
while len(values) < 20 and time.time() < deadline:
    message = consumer.poll(1)
    if message is not None and not message.error():
        values.append(message.value())
consumer.close()
if values != [b"value-%d" % i for i in range(20)]:
    sys.exit(f"stored values differ: {values}")
