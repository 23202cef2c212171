"""Memory per idle connection, and whether it comes back: opens N connections to a running broker, sends one
ApiVersions request on each, reads the answers, leaves them all open, and reports the broker process's RSS growth
per connection. With --rounds R it then closes them all, repeats R times, and follows the RSS for --watch seconds
after the last close (the broker should shrink back near where it started).
Usage: /usr/bin/python3 bench/scripts/idle-connections.py BROKER_PID HOST:PORT N [--rounds R] [--watch S]"""
import argparse
import resource
import socket
import struct
import time

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
parser = argparse.ArgumentParser()
parser.add_argument("pid", type=int)
parser.add_argument("address")
parser.add_argument("count", type=int)
parser.add_argument("--rounds", type=int, default=0)
parser.add_argument("--watch", type=int, default=30)
args = parser.parse_args()
host, port = args.address.rsplit(":", 1)


def rss_kb():
    with open(f"/proc/{args.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def api_versions(correlation):
    body = struct.pack(">hhih", 18, 0, correlation, 4) + b"idle"
    return struct.pack(">i", len(body)) + body


def open_all():
    sockets = []
    for i in range(args.count):
        s = socket.create_connection((host, int(port)))
        s.sendall(api_versions(i))
        sockets.append(s)
    for s in sockets:
        size = struct.unpack(">i", s.recv(4))[0]
        received = 0
        while received < size:
            received += len(s.recv(size - received))
    return sockets


start = rss_kb()
for round in range(max(1, args.rounds)):
    before = rss_kb()
    sockets = open_all()
    time.sleep(2)
    after = rss_kb()
    print(f"round {round + 1}: {args.count} idle connections: RSS {before} KB -> {after} KB, {(after - before) * 1024 // args.count} bytes each")
    if args.rounds == 0:
        break
    for s in sockets:
        s.close()
    time.sleep(2)
    print(f"round {round + 1}: all closed: RSS {rss_kb()} KB")

if args.rounds > 0:
    for waited in range(5, args.watch + 1, 5):
        time.sleep(5)
        print(f"{waited} s after the last close: RSS {rss_kb()} KB (started at {start} KB)")
