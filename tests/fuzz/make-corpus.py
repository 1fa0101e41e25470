#!/usr/bin/env python3
"""make-corpus.py - (re)writes the seed corpora tests/fuzz/corpus/NAME/ from
real outputs: the frozen vectors of tests/data/vectors (envelopes, batch
plaintexts, receipts, enrollment code), the record files of tests/data,
and a few hand-made requests.  Run from the top of the tree:

    python3 tests/fuzz/make-corpus.py

Files are named by content hash, so rerunning adds nothing twice."""
import glob
import hashlib
import json
import os
import zlib

TOP = os.getcwd()
OUT = os.path.join(TOP, "tests/fuzz/corpus")


def put(name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, h), "wb") as f:
        f.write(data)


def vec(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


V = os.path.join(TOP, "tests/data/vectors")
for p in sorted(glob.glob(V + "/envelope-*.txt")):
    env = bytes.fromhex(vec(p)["envelope"])
    put("envelope", env)
    put("http", b"\x02/v1/devices/%s/batches/%s\n" % (
        env[24:40].hex().encode(), env[40:56].hex().encode()) + env)
for p in sorted(glob.glob(V + "/batch-*.ndjson")):
    plain = open(p, "rb").read()
    put("batch", plain)
    z = zlib.compress(plain, 6)
    n = len(plain)
    put("inflate", bytes([n & 255, (n >> 8) & 255, (n >> 16) & 255]) + z)
    for line in plain.splitlines():
        put("json", line)
r = vec(V + "/receipt-1.txt")
put("receipt", bytes.fromhex(r["receipt"]) + r["results"].encode())
e = vec(V + "/enroll-1.txt")
for name in ("feed-1.txt", "feed-2.txt"):  # plain, deflated
    for line in open(V + "/" + name):
        k, _, v = line.strip().partition(" ")  # "feed <hex>", no colon
        if k == "feed":
            put("feed", bytes.fromhex(v))
put("enroll", e["code"])
for p in sorted(glob.glob(TOP + "/tests/data/valid/*.json") +
                glob.glob(TOP + "/tests/data/invalid/*.json")):
    put("json", open(p, "rb").read())
put("json", '{"a":[1,2.5e3,-0,true,false,null,"\\u00e9\\ud83d\\ude00"]}')
put("http", b"\x00/v1/health\n")
put("http", b"\x01/v1/enroll\n" + json.dumps({
    "token_id": e["token_id"], "device_id": "00" * 16,
    "device_pk": "11" * 32, "proof": "22" * 32, "self_sig": "33" * 64,
    "agent_version": "0.1.0"}).encode())
put("http", b"\x02/v1/devices/" + b"ab" * 16 + b"/batches/" + b"cd" * 16 +
    b"\nGSB1")
put("http", b"\x00/v1/devices/" + b"ab" * 16 + b"/attachments/" +
    b"ef" * 32 + b"\n")
# Attachments: the sealed vector (3 messages of 1024 bytes) fed in spans
# of 1, 2 and all messages, cut short, with a byte too many; the receipt.
A = os.path.join(TOP, "tests/data/attachments")
sealed = open(A + "/vector-1.sealed", "rb").read()
for span in (1, 2, 255):
    put("attachment", bytes([span]) + sealed)
put("attachment", b"\x01" + sealed[:240 + 1041])
put("attachment", b"\x01" + sealed + b"\x00")
put("attachment", b"\x00" + open(A + "/vector-1.receipt", "rb").read())
