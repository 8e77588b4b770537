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

import contextlib
import gc
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from coolify_migrate.apps.coolify_v3.demo_forked_writer import ForkedWriter, can_fork
from coolify_migrate.apps.coolify_v3.demo_rows import Instance
from coolify_migrate.apps.coolify_v3.demo_schema import (  # noqa: F401 (the demo's public names)
    INDEXES,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_FILE,
    TABLES,
)
from coolify_migrate.apps.coolify_v3.demo_writer import (
    Builder,
    RowWriter,
    Sealer,
    open_build,
    table_specs,
)
from coolify_migrate.apps.coolify_v3.legacy_key import date_seeded_key
from coolify_migrate.core.durable import fsync_dir, fsync_file
from coolify_migrate.core.output import Null, Output
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import AesCtrJsonCodec

UNITS_PER_WRITE = 64  # units whose rows are held before each write (one batch)


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
    handed over every ``UNITS_PER_WRITE`` units, their ciphertexts made in one batch each
    (``AesCtrJsonCodec.encrypt_many``). With more than one batch, a forked writer process
    (``demo_forked_writer``) encrypts and inserts them while this one makes the next. The same
    seed gives the same rows and plaintexts; the IVs are random (``benchmarks/bench_demo.py``
    measures the speed against the bare encryption of the same values)."""
    out = out or Null()
    codec = AesCtrJsonCodec()
    key = Secret(date_seeded_key(installed_at_ms))
    rng = random.Random(seed if seed is not None else installed_at_ms)
    db_path = db_path or data_dir / "db" / "prod.db"
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    demo = DemoInstance(data_dir, db_path, key, installed_at_ms, version)

    with _no_cyclic_collection():
        _write_db(demo, db_path, codec, rng, rows, out, record)
    _write_env(data_dir / ".env", version, key, installed_at_ms, rng)
    return demo


@contextlib.contextmanager
def _no_cyclic_collection() -> Iterator[None]:
    """The cyclic garbage collector off while the rows are made: they hold no reference cycles
    (reference counting frees them), but the collector would walk the ones held, over and over,
    as more are made (a fifth of the time it takes). The writer process is forked with it off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _write_db(
    demo: DemoInstance,
    db_path: Path,
    codec: AesCtrJsonCodec,
    rng: random.Random,
    rows: int,
    out: Output,
    record: bool,
) -> None:
    """The database, built under a temporary name, then made durable and renamed into place."""
    key, installed_at_ms = demo.key, demo.installed_at_ms
    tmp = db_path.with_name(db_path.name + ".creating")
    tmp.unlink(missing_ok=True)
    conn = open_build(tmp)
    writer: RowWriter | ForkedWriter | None = None
    try:
        conn.executescript(TABLES)
        specs = table_specs(conn)
        if rows > UNITS_PER_WRITE and can_fork():  # more than one write: a second core writes
            conn.close()  # (no connection crosses the fork)
            writer = ForkedWriter(tmp, specs, codec, key)
        else:
            conn.execute("BEGIN")
            writer = RowWriter(conn, specs, codec, key)
        builder = Builder(
            specs,
            rng,
            installed_at_ms,
            Sealer(codec, key),
            demo.plaintexts,
            demo.as_is,
            record=record,
        )
        instance = Instance(builder, installed_at_ms)
        instance.base()
        bar = out.progress("building the demo's rows", max(rows, 1), "rows")
        try:
            for u in range(max(rows, 1)):
                instance.unit(u)
                if u % UNITS_PER_WRITE == UNITS_PER_WRITE - 1:  # rows go out as they are made
                    writer.write(builder.take())
                bar.advance()
        finally:
            bar.close()
        last = builder.take()
        bar = out.progress("writing the demo's tables", len(last[1]), "tables")
        try:
            writer.finish(last, bar.advance)
        finally:
            bar.close()
        demo.recorded, demo.counted = record, builder.count
    except BaseException:
        if writer is not None:
            writer.abort()
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    fsync_file(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, db_path)
    fsync_dir(db_path.parent)


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
