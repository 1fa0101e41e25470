#!/usr/bin/env python3
"""summary.py - adds up the per-seed lines of gssim (tests/sim/sim.c) logs.

    summary.py LOG...

Prints one line: the totals of every count gssim reports per seed (saves,
crashes, cut and duplicated requests, platform crashes, restores, ...).
tests/checker/campaign.sh writes it into tests/CAMPAIGN.md.
"""
import re
import sys

KEYS = ["saves", "saves_crashed", "edits", "deletes", "shared", "syncs",
        "syncs_crashed", "offline", "requests", "cut_up", "cut_down", "dups",
        "pf_crashes", "backups", "restores", "forks", "discarded"]
PAT = re.compile(
    r"(\d+) saves \((\d+) crashed\), (\d+) edits, (\d+) deletes, (\d+) shared "
    r"edits, (\d+) syncs \((\d+) crashed\), (\d+) offline device-days, (\d+) "
    r"requests \((\d+) cut up, (\d+) cut down, (\d+) duplicated\), (\d+) "
    r"platform crashes, (\d+) backups, (\d+) restores \((\d+) forks, (\d+) "
    r"saves discarded\)")


def main(paths):
    tot = dict.fromkeys(KEYS, 0)
    for path in paths:
        for line in open(path):
            m = PAT.search(line)
            if m:
                for k, v in zip(KEYS, m.groups()):
                    tot[k] += int(v)
    print("{saves:,} saves ({saves_crashed:,} crashed), {edits:,} edits, "
          "{deletes:,} deletes, {shared:,} shared edits, {syncs:,} syncs "
          "({syncs_crashed:,} crashed), {offline:,} offline device-days, "
          "{requests:,} requests ({cut_up:,} cut before the platform, "
          "{cut_down:,} answers cut after it, {dups:,} duplicated), "
          "{pf_crashes:,} platform crashes, {backups:,} backups, {restores:,} "
          "restores from backup ({forks:,} forks flagged, {discarded:,} saves "
          "undone by a restore)".format(**tot))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
