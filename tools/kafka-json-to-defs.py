#!/usr/bin/env python3
"""One-off transcription aid: reads Kafka's message JSON (facts only: names, types, versions,
nullability, tags, defaults) and prints them in Osprey's definition format (see definitions/README.md).
The .def files under definitions/ are the source of truth; this script only helped write them, and the
definitions check (checks/Osprey.DefinitionsCheck) keeps them honest. No descriptive text is carried over."""
import json, os, re, sys

def load(path):
    text = open(path).read()
    text = re.sub(r'^\s*//.*$', '', text, flags=re.M)
    return json.loads(text)

def field_line(f, indent):
    parts = [f["name"], f["type"], f.get("versions", "0+")]
    if "nullableVersions" in f: parts.append("nullable=" + f["nullableVersions"])
    if "tag" in f: parts.append("tag=%d@%s" % (f["tag"], f["taggedVersions"]))
    if "default" in f:
        d = f["default"]
        parts.append('default=""' if d == "" else "default=" + str(d).lower() if isinstance(d, bool) else "default=" + str(d))
    if f.get("ignorable"): parts.append("ignorable")
    if f.get("mapKey"): parts.append("mapkey")
    if "flexibleVersions" in f: parts.append("flexible=" + f["flexibleVersions"])
    if "entityType" in f: parts.append("entity=" + f["entityType"])
    if f.get("zeroCopy"): parts.append("zerocopy")
    out = ["  " * indent + " ".join(parts)]
    for c in f.get("fields", []):
        out += field_line(c, indent + 1)
    return out

def message_block(m):
    head = [m["type"], m["name"]]
    if "apiKey" in m: head.append("key=%d" % m["apiKey"])
    head.append("versions=" + m["validVersions"])
    head.append("flexible=" + m.get("flexibleVersions", "none"))
    if m.get("latestVersionUnstable"): head.append("unstable-latest")
    if m.get("listeners"): head.append("listeners=" + ",".join(m["listeners"]))
    out = [" ".join(head)]
    for f in m.get("fields", []):
        out += field_line(f, 1)
    for s in m.get("commonStructs", []):
        out.append("struct %s %s" % (s["name"], s.get("versions", "0+")))
        for f in s["fields"]:
            out += field_line(f, 1)
    return out

def main(src, table, dest):
    broker = {}
    for line in open(table):
        cols = line.split()
        if len(cols) >= 5 and "broker" in cols[4]:
            broker[int(cols[0])] = cols[1]
    os.makedirs(dest, exist_ok=True)
    for key, name in sorted(broker.items()):
        blocks = []
        for kind in ("Request", "Response"):
            blocks.append("\n".join(message_block(load(os.path.join(src, name + kind + ".json")))))
        with open(os.path.join(dest, "%02d-%s.def" % (key, name)), "w") as fh:
            fh.write("# API %d %s\n\n" % (key, name) + "\n\n".join(blocks) + "\n")
    blocks = [ "\n".join(message_block(load(os.path.join(src, n + ".json")))) for n in ("RequestHeader", "ResponseHeader")]
    with open(os.path.join(dest, "Headers.def"), "w") as fh:
        fh.write("# Request and response headers\n\n" + "\n\n".join(blocks) + "\n")
    data = sorted(f[:-5] for f in os.listdir(src) if load(os.path.join(src, f)).get("type") == "data")
    blocks = ["\n".join(message_block(load(os.path.join(src, n + ".json")))) for n in data]
    with open(os.path.join(dest, "Data.def"), "w") as fh:
        fh.write("# Data schemas carried inside other messages and records\n\n" + "\n\n".join(blocks) + "\n")

if __name__ == "__main__":
    main(*sys.argv[1:4])
