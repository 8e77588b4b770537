"""What the commands ask of the key analysis: which key the data are under (``identify``,
``live_key``), how each field fares under a key (``column_counts``, ``verify_all``), whether the
stored key-check value names a key, and what a run has already proven (``sole_key``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.config.envfile import SAFE_VALUE, EnvFile
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.secret import check_state as check_state  # status reads it there
from coolify_migrate.core.store import Connection
from coolify_migrate.secrets.keys import Analysis, FieldCount, analyse, candidates


@dataclass
class Verdict:
    key: Secret | None
    source: str | None
    method: str  # "key-check", "evidence", "only-consistent", "no-data"
    analysis: Analysis | None = None

    @property
    def tried(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.analysis.stats] if self.analysis else []

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.key.fingerprint if self.key else None,
            "source": self.source,
            "method": self.method,
            "candidates": self.tried,
        }


def identify(
    ctx: Context, conn: Connection, cands: list[KeyCandidate], *, full: bool = False
) -> Verdict:
    """The key the data are (mostly) under, or KeyProblem (nothing changed)."""
    recorded = conn.read_meta().get("key_check")
    analysis = analyse(ctx, conn, cands, full=full, recorded_check=recorded)
    if analysis.primary is not None:
        return Verdict(analysis.primary.key, analysis.primary.source, analysis.method, analysis)
    if recorded:
        raise KeyProblem(
            f"the database was encrypted with key {recorded[:16]}, which this instance no longer knows",
            hint="put that key back in .env (or the keyring, or --key-file) - 'backup list' "
            "shows which backups use which key",
            needed=recorded[:16],
        )
    tried = ", ".join(f"{s.cand.source}: {s.result}" for s in analysis.stats) or "no keys"
    consistent = [s for s in analysis.stats if s.decoded and not s.failed]
    if len(consistent) > 1:
        raise KeyProblem(
            "too few encrypted values to tell which key they are under: "
            + ", ".join(f"{s.cand.source} ({s.cand.key.fingerprint})" for s in consistent)
            + " each read all of them",
            hint="remove the keys that are not in use from .env, or keep only the right one",
        )
    raise KeyProblem(
        f"no known key decrypts the data ({tried}): a key is missing, or the stored values "
        "do not decrypt to text (not written by the app, or damaged)",
        hint="give the right key with --key-file FILE (one per line), add it to .env as "
        "COOLIFY_SECRET_KEY_OLD_<ms>=..., or restore a backup",
    )


# characters that make a value read differently by Compose (``$`` expansion, `` #`` comments),
# dotenv (quotes, ``#``), ``docker --env-file`` and ``sh``; named, never the value itself
_HAZARDS = (
    ("$", "'$' (Compose expands it)"),
    ("#", "'#' (dotenv and Compose read a comment)"),
    ("'\"`", "quotes"),
    ("\\", "a backslash"),
    (" \t", "blanks"),
)


def check_key_writable(key: Secret, source: str) -> None:
    """A key outside the safe alphabet cannot be written back as the same bytes for every
    reader of ``.env``; refuse before the backup, not in the middle of a roll."""
    value = key.reveal()
    if SAFE_VALUE.fullmatch(value):
        return
    found = [what for chars, what in _HAZARDS if any(c in value for c in chars)]
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        found.append("control characters")
    raise KeyProblem(
        f"the data key ({source}) holds {', '.join(found) or 'characters outside letters, digits and _-.,/:@+=%'}: "
        "the tool cannot write it back to .env safely; nothing was changed",
        hint="such a key reads differently in Compose, dotenv and sh; "
        "see docs/architecture.md#hostile-inputs-what-is-checked-before-a-change",
    )


def live_key(
    ctx: Context,
    conn: Connection,
    env: EnvFile,
    extra: list[KeyCandidate] | tuple[KeyCandidate, ...] = (),
) -> Verdict:
    cands = candidates(ctx, env, extra)
    if not cands:  # say which line is missing, not that "no key decrypts"
        spec = ctx.profile.data_secret
        raise KeyProblem(
            f"{env.path} names no data key: {' / '.join(spec.env_keys)} has no value (missing, "
            "empty, or a line without '='); nothing was changed",
            hint=f"restore the line {spec.env_keys[-1]}=<the key> in .env from your backup, or "
            "give the key with --key-file FILE",
        )
    return identify(ctx, conn, cands)


@dataclass
class ColumnCount:
    """``secrets verify``: one field's values against the active key."""

    column: str
    ok: int = 0
    failed: int = 0  # ciphertext not under the active key (under another key, or none)
    null: int = 0  # NULL or empty: no secret
    text: int = 0  # not ciphertext: left as it is
    other_keys: dict[str, int] = field(default_factory=dict)
    absent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "absent": self.absent,
            "ok": self.ok,
            "failed": self.failed,
            "null": self.null,
            "not_ciphertext": self.text,
            "under_other_keys": dict(self.other_keys),
        }


def verify_all(
    ctx: Context,
    conn: Connection,
    key: Secret,
    cands: list[KeyCandidate] | None = None,
) -> list[ColumnCount]:
    """Every value of every declared field against ``key``; never stops early. Values that are
    not under ``key`` are attributed to the other known keys where those are proven."""
    others = [c for c in (cands or []) if c.key != key]
    analysis = analyse(ctx, conn, [KeyCandidate("active", key), *others], full=True)
    return column_counts(ctx, analysis, key)


def column_counts(ctx: Context, analysis: Analysis, key: Secret) -> list[ColumnCount]:
    fp = key.fingerprint
    out = []
    for column in ctx.profile.encrypted_columns:
        count = analysis.counts.get(column.label, FieldCount(column.label))
        ok = count.by_key.get(fp, 0)
        out.append(
            ColumnCount(
                column.label,
                ok=ok,
                failed=count.cipher - ok,
                null=count.null + count.empty,
                text=count.text,
                other_keys={k: n for k, n in count.by_key.items() if k != fp},
                absent=count.absent,
            )
        )
    return out


def undecryptable(ctx: Context, key: Secret) -> int:
    """How many ciphertext values of the instance's database are not under ``key``."""
    conn = ctx.store().connect(readonly=True)
    try:
        return sum(c.failed for c in verify_all(ctx, conn, key))
    finally:
        conn.close()


def sole_key(ctx: Context, analysis: Analysis, env: EnvFile) -> str | None:
    """The key-check value of the .env active key when a full ``analysis`` found every
    ciphertext value under it (none unread, none left), and the app's container knows no other
    key that could write values in the meantime; else None."""
    active = ctx.profile.active_key(env)
    if active is None or not analysis.full or analysis.unknown.count or analysis.left.count:
        return None
    held = {fp for fp, n in analysis.under().items() if n}
    if held - {active.key.fingerprint}:
        return None
    if any(c.key != active.key for c in ctx.container_keys() if c.key):
        return None
    return active.key.check_value


def proven_under(ctx: Context, key: Secret) -> bool:
    """Whether this run proved every value under ``key`` (``Context.proofs``) and the database
    does not record another key."""
    if ctx.proofs.every_value_under != key.check_value:
        return False
    conn = ctx.store().connect(readonly=True)
    try:
        return check_state(conn.read_meta().get("key_check"), key) != "mismatch"
    finally:
        conn.close()
