"""A stand-in for the app writing to its database: small commits in WAL mode until killed.

    python tests/wal_writer.py DB [--checkpoint] [--rate N]

Each transaction inserts one row into ``writer_rows`` and sets ``writer_total.n`` to the row
count, so any consistent snapshot has ``count(writer_rows) == writer_total.n`` and ids 1..n.
Automatic checkpoints are off unless ``--checkpoint`` is given, so committed rows stay in the
``-wal`` file, as they do between an app's checkpoints: that is what a plain file copy misses.
``--rate N`` paces it to about N commits a second (default: as fast as it can).
The tables must exist before it starts (the test creates them, then checkpoints).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time


def main() -> None:
    path = sys.argv[1]
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if "--checkpoint" not in sys.argv:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    rate = float(sys.argv[sys.argv.index("--rate") + 1]) if "--rate" in sys.argv else 0.0
    payload = os.urandom(200).hex()
    started, done = time.monotonic(), 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute("INSERT INTO writer_rows(payload) VALUES (?)", (payload,))
        conn.execute("UPDATE writer_total SET n = ?", (cur.lastrowid,))
        conn.execute("COMMIT")
        done += 1
        if rate:
            ahead = started + done / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


if __name__ == "__main__":
    main()
