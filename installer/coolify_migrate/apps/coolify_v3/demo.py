"""A legacy Coolify v3 instance shaped like a real one, for the demo, the tests and the benchmarks.

It writes what the pre-2023-07-14 installer and the app left behind: a ``.env`` whose
``COOLIFY_SECRET_KEY`` is derived from the install time (its mtime is that time), and a
``prod.db`` with every table of v3's last schema (``schema.sql``), filled the way the app
fills them: Prisma's types (DATETIME as integer ms, BOOLEAN as 0/1, cuid ids), the rows the seed
script and the first registration create, teams linked through the many-to-many tables, and every
secret encrypted under the date-seeded key with the values the app generates (see
``.scratch/schema_facts.md``).

It also holds the odd values real instances hold: node-forge's CRLF deploy keys, pasted CRLF keys,
``openssl ecparam`` output, preview secrets sharing their twin's ciphertext, service secrets copied
verbatim from the legacy tables by ``migrateServicesToNewTemplate`` (one with `` || ''`` glued to
the ciphertext), ``''`` and clear text where ciphertext belongs, whitespace-only and padded values.

``rows`` counts *units*: each unit is three applications (public GitHub, private GitHub App,
GitLab App) with secrets, previews and builds, a database, one service of every legacy type plus a
template-only one, SSH keys, a remote destination, registries and certificates. Unit 0 also holds
the variants a single unit cannot (a second GlitchTip and WordPress), so ``rows=1`` has every kind.
"""

from __future__ import annotations

import os
import random
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from coolify_migrate.apps.coolify_v3.demo_rows import Instance
from coolify_migrate.apps.coolify_v3.demo_schema import (  # noqa: F401 (the demo's public names)
    INDEXES,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_FILE,
    TABLES,
)
from coolify_migrate.apps.coolify_v3.demo_writer import Builder, Sealer
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key
from coolify_migrate.core.durable import fsync_dir, fsync_file
from coolify_migrate.core.output import Null, Output
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec

UNITS_PER_WRITE = 64  # units whose rows are held (and ciphertexts sealed) before each write


@dataclass
class DemoInstance:
    data_dir: Path
    db_path: Path
    key: Secret
    installed_at_ms: int
    version: str
    # (table, column, id) -> plaintext (after v3's trim) of a stored ciphertext, None for SQL NULL
    plaintexts: dict[tuple[str, str, str], str | None] = field(default_factory=dict)
    # (table, column, id) -> stored text of an encrypted field that is not ciphertext ('', a
    # ciphertext followed by " || ''", clear text): a correct tool leaves it byte-identical
    as_is: dict[tuple[str, str, str], str] = field(default_factory=dict)
    recorded: bool = True  # False: plaintexts and as_is were not kept, only the count
    counted: int = 0  # ciphertexts stored by create (copies included)

    @property
    def value_count(self) -> int:
        """Ciphertexts held: the recorded plaintexts (a test may record a value it adds), or the
        count create made when it recorded none."""
        if not self.recorded:
            return self.counted
        return sum(1 for v in self.plaintexts.values() if v is not None)


def create(
    data_dir: Path,
    *,
    version: str,
    installed_at_ms: int,
    rows: int = 5,
    seed: int | None = None,
    db_path: Path | None = None,
    out: Output | None = None,
    record: bool = True,
) -> DemoInstance:
    """Write the instance. The caller checks that the directory holds no instance yet.

    ``record``: keep every encrypted field's plaintext (``plaintexts``, ``as_is``) for the tests;
    without it only ``value_count`` is kept and memory stays flat whatever ``rows`` is: rows are
    inserted every ``UNITS_PER_WRITE`` units, their ciphertexts made in one batch each
    (``AesCtrJsonCodec.encrypt_many``). The same seed
    gives the same rows and plaintexts; the IVs are random (``benchmarks/bench_demo.py``
    measures the speed against the bare encryption of the same values)."""
    out = out or Null()
    codec = AesCtrJsonCodec()
    key = Secret(date_seeded_key(installed_at_ms))
    rng = random.Random(seed if seed is not None else installed_at_ms)
    db_path = db_path or data_dir / "db" / "prod.db"
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    demo = DemoInstance(data_dir, db_path, key, installed_at_ms, version)

    tmp = db_path.with_name(db_path.name + ".creating")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # A new file nothing else reads, removed if this fails: no journal, no syncs while it is
        # built; it is made durable once, complete, before it takes the database's name.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        # KiB: fewer spills of a big transaction. 16 MiB was no faster and lowered the peak RSS
        # at 1M values, but raised it at 5M (361 MB against 201: CREATE INDEX then sorts in
        # more, smaller runs, which SQLite maps in to merge them)
        conn.execute("PRAGMA cache_size = -65536")
        conn.executescript(TABLES)
        sealer = Sealer(codec, key)
        builder = Builder(
            conn, rng, installed_at_ms, sealer, demo.plaintexts, demo.as_is, record=record
        )
        instance = Instance(builder, installed_at_ms)
        conn.execute("BEGIN")
        instance.base()
        bar = out.progress("building the demo's rows", max(rows, 1), "rows")
        try:
            for u in range(max(rows, 1)):
                instance.unit(u)
                if u % UNITS_PER_WRITE == UNITS_PER_WRITE - 1:  # rows go out as they are made
                    builder.write(conn)
                bar.advance()
        finally:
            bar.close()
        bar = out.progress("writing the demo's tables", len(builder.specs), "tables")
        try:
            builder.write(conn, bar)
            for index in INDEXES:  # built once over the rows, not row by row
                conn.execute(index)
            conn.execute("COMMIT")
        finally:
            bar.close()
        demo.recorded, demo.counted = record, builder.count
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    fsync_file(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, db_path)
    fsync_dir(db_path.parent)
    _write_env(data_dir / ".env", version, key, installed_at_ms, rng)
    return demo


def _write_env(
    env_path: Path, version: str, key: Secret, installed_at_ms: int, rng: random.Random
) -> None:
    env_text = (
        f"TAG={version}\n"
        f"COOLIFY_APP_ID={uuid.UUID(int=rng.getrandbits(128), version=4)}\n"
        f"COOLIFY_SECRET_KEY={key.reveal()}\n"
        "COOLIFY_DATABASE_URL=file:../db/prod.db\n"
        "COOLIFY_HOSTED_ON=docker\n"
        "COOLIFY_WHITE_LABELED=false\n"
        "COOLIFY_WHITE_LABELED_ICON=\n"
        "COOLIFY_AUTO_UPDATE=false\n"
    )
    fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(env_text)
    seconds = installed_at_ms / 1000
    os.utime(env_path, (seconds, seconds))
