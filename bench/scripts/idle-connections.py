"""Memory per idle connection: opens N connections to a running broker, sends one ApiVersions request on each,
reads the answers, leaves them all open, and reports the broker process's RSS growth per connection.
Usage: /usr/bin/python3 bench/scripts/idle-connections.py BROKER_PID HOST:PORT N"""
import resource
import socket
import struct
import sys
import time

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
pid, address, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
host, port = address.rsplit(":", 1)


def rss_kb():
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def api_versions(correlation):
    body = struct.pack(">hhih", 18, 0, correlation, 4) + b"idle"
    return struct.pack(">i", len(body)) + body


before = rss_kb()
sockets = []
for i in range(count):
    s = socket.create_connection((host, int(port)))
    s.sendall(api_versions(i))
    sockets.append(s)
for s in sockets:
    size = struct.unpack(">i", s.recv(4))[0]
    received = 0
    while received < size:
        received += len(s.recv(size - received))
time.sleep(2)
after = rss_kb()
print(f"{count} idle connections: RSS {before} KB -> {after} KB, {(after - before) * 1024 // count} bytes each")
