#!/usr/bin/env python3
"""gscheck.py - the invariant checker of DESIGN.md section 8.

    gscheck.py --platform PLATFORM_DB [--agent AGENT_DB[:SAVED_FILE]]...
               [--quiescent] [--seed S] [--quiet]

Compares one platform store with the stores of the devices that sync to it
(read only: both are opened with ?mode=ro) and prints one line per
violation, then "gscheck: N devices, N records, N violations".  Exit 0 when
there is none, 1 otherwise, 2 on a usage error.  --seed only labels the
output, so that a failing simulation prints the seed that replays it.

SAVED_FILE (optional, per device) lists the uuids whose saves the device
reported as done (one per line, as `gridagent collect` printed them).  A
save whose command was killed before it answered is indeterminate, as in
Jepsen's set test: it may or may not be there, and either is fine.

Invariants (the numbers of DESIGN.md section 8):
  I1 no loss      every reported save is in the device store; every change
                  the device marks delivered is on the platform; a change
                  still batched belongs to a sealed (unacked) outbox row.
                  With --quiescent (after a clean sync): nothing unsent or
                  sealed is left, and every device record whose last
                  change was delivered is on the platform.
  I2 no dup       one platform batch per (device, batch id); one applied
                  change per change id; one revision per (uuid, rev).
                  (Two batches with one seq are reported as a note.)
  I3 no phantom   every platform record, revision and change points at a
                  stored batch whose envelope hashes (BLAKE2b-256) to its
                  envelope_hash, from an enrolled device; a batch of a
                  device we were given is that device's kept outbox
                  envelope (same batch id, seq and hash).
  I4 receipts     a device outbox row acked or quarantined has its batch
                  on the platform with the same hash, and the device's
                  stored receipt is the platform's, byte for byte.
  I5 integrity    PRAGMA integrity_check is ok on every store.
"""
import hashlib
import sqlite3
import sys

# agent change states (agent/store.h)
UNSENT, BATCHED, DELIVERED, REJECTED, QUARANTINED, CONFLICTED = range(6)


class Checker:
    def __init__(self, quiet):
        self.violations = []
        self.quiet = quiet

    def bad(self, inv, msg):
        self.violations.append("%s %s" % (inv, msg))


def open_ro(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    db.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
    return db


def integrity(ck, db, what):
    rows = db.execute("PRAGMA integrity_check").fetchall()
    if rows != [("ok",)]:
        ck.bad("I5", "%s: integrity_check: %r" % (what, rows[:5]))


def check_platform(ck, pdb):
    integrity(ck, pdb, "platform")
    # I2: uniqueness, whatever the constraints say (they could be dropped
    # by a bad migration; the checker does not trust the schema).
    for dev, bid, n in pdb.execute(
            "SELECT hex(device_id), hex(batch_id), count(*) FROM batches "
            "GROUP BY device_id, batch_id HAVING count(*) > 1"):
        ck.bad("I2", "platform holds batch %s of device %s %d times"
               % (bid, dev, n))
    # Two batches with one seq are not a duplicate (their changes are
    # still applied once, checked below), but only a device restored
    # from a backup should ever send them: say so, without failing.
    for dev, seq, n in pdb.execute(
            "SELECT hex(device_id), seq, count(*) FROM batches "
            "GROUP BY device_id, seq HAVING count(*) > 1"):
        if not ck.quiet:
            print("gscheck: note: %d batches with seq %d of device %s "
                  "(a restored device?)" % (n, seq, dev))
    for cid, n in pdb.execute(
            "SELECT change_id, count(*) FROM changes GROUP BY change_id "
            "HAVING count(*) > 1"):
        ck.bad("I2", "change %s applied %d times" % (cid, n))
    for cid, n in pdb.execute(
            "SELECT change_id, count(*) FROM revisions GROUP BY change_id "
            "HAVING count(*) > 1"):
        ck.bad("I2", "change %s made %d revisions" % (cid, n))
    for u, rev, n in pdb.execute(
            "SELECT uuid, rev, count(*) FROM revisions GROUP BY uuid, rev "
            "HAVING count(*) > 1"):
        ck.bad("I2", "record %s has revision %d %d times" % (u, rev, n))
    # I3: every batch's envelope is kept and hashes to its name, from an
    # enrolled device.
    enrolled = set(r[0] for r in pdb.execute(
        "SELECT hex(device_id) FROM devices"))
    batches = {}
    for bid, dev, env, h in pdb.execute(
            "SELECT b.id, hex(b.device_id), e.envelope, b.envelope_hash "
            "FROM batches AS b LEFT JOIN batch_envelopes AS e "
            "ON e.batch = b.id"):
        batches[bid] = dev
        if env is None or len(env) == 0:
            ck.bad("I3", "batch row %d keeps no envelope" % bid)
        elif hashlib.blake2b(env, digest_size=32).digest() != h:
            ck.bad("I3", "batch row %d: envelope does not hash to its "
                   "envelope_hash" % bid)
        if dev not in enrolled:
            ck.bad("I3", "batch row %d from unenrolled device %s"
                   % (bid, dev))
    for table, key in (("records", "uuid"), ("revisions", "change_id"),
                       ("changes", "change_id")):
        has_dev = table != "changes"
        q = "SELECT %s, batch%s FROM %s" % (
            key, ", hex(device_id)" if has_dev else "", table)
        for row in pdb.execute(q):
            if row[1] not in batches:
                ck.bad("I3", "%s %s points at missing batch %s"
                       % (table, row[0], row[1]))
            elif has_dev and batches[row[1]] != row[2]:
                ck.bad("I3", "%s %s is filed under device %s but its "
                       "batch came from %s" % (table, row[0], row[2],
                                               batches[row[1]]))
    return len(batches)


def check_agent(ck, pdb, path, saved_path, quiescent):
    adb = open_ro(path)
    name = path
    integrity(ck, adb, "agent %s" % name)
    row = adb.execute("SELECT hex(device_id) FROM device").fetchone()
    dev = row[0] if row else None

    # I1, device side: every reported save is still in the store.
    if saved_path:
        records = set(r[0] for r in adb.execute("SELECT uuid FROM record"))
        with open(saved_path) as f:
            for line in f:
                u = line.strip()
                if u and u not in records:
                    ck.bad("I1", "%s: saved record %s is gone from the "
                           "device" % (name, u))

    outbox = {}
    for seq, bid, h, state, receipt in adb.execute(
            "SELECT seq, hex(batch_id), hash, state, receipt FROM outbox"):
        outbox[seq] = (bid, h, state, receipt)

    # A new record's creation waits in pending_creation until batched
    # (schema/agent/0008): unsent, like a change row in state 0.
    has_pending = adb.execute(
        "SELECT 1 FROM sqlite_schema WHERE name = 'pending_creation'"
    ).fetchone() is not None
    if has_pending and quiescent:
        for u, cid in adb.execute(
                "SELECT uuid, change_id FROM pending_creation"):
            ck.bad("I1", "%s: creation %s of record %s still unsent after "
                   "a clean sync" % (name, cid, u))

    # A creation sealed into a batch is a row of sealed_creation (schema/
    # agent/0011) inside its batch's range of uuids, in its batch's state:
    # batched (like a change row in state 1) while the batch is sealed,
    # delivered (2) once it is acked; no other batch keeps its rows.
    has_sealed = adb.execute(
        "SELECT 1 FROM sqlite_schema WHERE name = 'sealed_creation'"
    ).fetchone() is not None
    if has_sealed:
        for u, cid, bseq, lo, hi in adb.execute(
                "SELECT s.uuid, s.change_id, s.batch_seq, o.first_creation, "
                "o.last_creation FROM sealed_creation AS s LEFT JOIN outbox "
                "AS o ON o.seq = s.batch_seq"):
            ob = outbox.get(bseq)
            if ob is None:
                ck.bad("I1", "%s: creation %s is batched in seq %s which "
                       "the outbox does not hold" % (name, cid, bseq))
            elif ob[2] not in ("sealed", "acked"):
                ck.bad("I4", "%s: creation %s still in sealed_creation "
                       "although batch %s is %s" % (name, cid, bseq, ob[2]))
            elif lo is None or hi is None or not lo <= u <= hi:
                ck.bad("I1", "%s: creation %s of record %s lies outside "
                       "its batch %s's range" % (name, cid, u, bseq))
            elif ob[2] == "acked":
                got = pdb.execute("SELECT outcome FROM changes "
                                  "WHERE change_id = ?", (cid,)).fetchone()
                if got is None:
                    ck.bad("I1", "%s: creation %s (record %s) delivered "
                           "is not on the platform" % (name, cid, u))
            elif quiescent:
                ck.bad("I1", "%s: creation %s still batched after a "
                       "clean sync" % (name, cid))

    # Consistency of change states with their batches.
    for cid, u, state, bseq in adb.execute(
            "SELECT change_id, uuid, state, batch_seq FROM change"):
        if state == BATCHED:
            ob = outbox.get(bseq)
            if ob is None:
                ck.bad("I1", "%s: change %s is batched in seq %s which "
                       "the outbox does not hold" % (name, cid, bseq))
            elif ob[2] != "sealed":
                ck.bad("I4", "%s: change %s still batched although batch "
                       "%s is %s" % (name, cid, bseq, ob[2]))
            elif quiescent:
                ck.bad("I1", "%s: change %s still batched after a clean "
                       "sync" % (name, cid))
        elif state == UNSENT and quiescent:
            ck.bad("I1", "%s: change %s still unsent after a clean sync"
                   % (name, cid))
        elif state == DELIVERED:
            got = pdb.execute("SELECT outcome FROM changes "
                              "WHERE change_id = ?", (cid,)).fetchone()
            if got is None:
                ck.bad("I1", "%s: change %s (record %s) marked delivered "
                       "is not on the platform" % (name, cid, u))

    if dev is None:
        adb.close()
        return
    # I4: what the device acked, the platform committed, with the same
    # receipt; I3: what the platform holds from this device is one of its
    # kept envelopes.
    plat = {}
    for seq, bid, h, receipt in pdb.execute(
            "SELECT seq, hex(batch_id), envelope_hash, receipt "
            "FROM batches WHERE hex(device_id) = ?", (dev,)):
        plat[bid] = (seq, h, receipt)
    for seq, (bid, h, state, receipt) in outbox.items():
        if state in ("acked", "quarantined"):
            p = plat.get(bid)
            if p is None:
                ck.bad("I4", "%s: batch seq %d is %s on the device but "
                       "not on the platform" % (name, seq, state))
            elif p[1] != h:
                ck.bad("I4", "%s: batch seq %d: platform holds other "
                       "bytes" % (name, seq))
            elif receipt is None or bytes(receipt) != bytes(p[2]):
                ck.bad("I4", "%s: batch seq %d: device receipt differs "
                       "from the platform's" % (name, seq))
        elif quiescent and state == "sealed":
            ck.bad("I1", "%s: batch seq %d still sealed after a clean "
                   "sync" % (name, seq))
    by_bid = dict((v[0], (k, v[1])) for k, v in outbox.items())
    for bid, (seq, h, _r) in plat.items():
        mine = by_bid.get(bid)
        if mine is None:
            ck.bad("I3", "%s: platform batch %s (seq %d) is not a kept "
                   "envelope of this device" % (name, bid, seq))
        elif mine[0] != seq or mine[1] != h:
            ck.bad("I3", "%s: platform batch %s differs from the kept "
                   "envelope (seq %d/%d)" % (name, bid, seq, mine[0]))
    if quiescent:
        # Every record whose newest change was delivered is there.
        for u, in adb.execute(
                "SELECT r.uuid FROM record r WHERE NOT EXISTS (SELECT 1 "
                "FROM change c WHERE c.uuid = r.uuid AND c.state <> ?)" +
                (" AND r.uuid NOT IN (SELECT uuid FROM pending_creation)"
                 if has_pending else "") +
                (" AND r.uuid NOT IN (SELECT s.uuid FROM sealed_creation "
                 "AS s JOIN outbox AS o ON o.seq = s.batch_seq WHERE "
                 "o.state <> 'acked')" if has_sealed else ""),
                (DELIVERED,)):
            if pdb.execute("SELECT 1 FROM records WHERE uuid = ?",
                           (u,)).fetchone() is None:
                ck.bad("I1", "%s: record %s delivered but not on the "
                       "platform" % (name, u))
    adb.close()


def main(argv):
    platform = None
    agents = []
    quiescent = quiet = False
    seed = None
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--platform", "--agent", "--seed") and i + 1 < len(argv):
            v = argv[i + 1]
            i += 2
            if a == "--platform":
                platform = v
            elif a == "--agent":
                path, _, saved = v.partition(":")
                agents.append((path, saved or None))
            else:
                seed = v
            continue
        if a == "--quiescent":
            quiescent = True
        elif a == "--quiet":
            quiet = True
        else:
            sys.stderr.write(__doc__)
            return 2
        i += 1
    if platform is None:
        sys.stderr.write(__doc__)
        return 2
    ck = Checker(quiet)
    pdb = open_ro(platform)
    check_platform(ck, pdb)
    for path, saved in agents:
        check_agent(ck, pdb, path, saved, quiescent)
    nrec = pdb.execute("SELECT count(*) FROM records").fetchone()[0]
    pdb.close()
    label = (" seed %s:" % seed) if seed is not None else ""
    for v in ck.violations[:50]:
        print("gscheck:%s VIOLATION %s" % (label, v))
    if len(ck.violations) > 50:
        print("gscheck:%s ... %d more" % (label, len(ck.violations) - 50))
    if not quiet or ck.violations:
        print("gscheck:%s %d devices, %d records, %d violations"
              % (label, len(agents), nrec, len(ck.violations)))
    return 1 if ck.violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
