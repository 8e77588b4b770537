"""``secrets verify``: every value of every declared field against the ``.env`` active key.

Read-only. It reads and decrypts every value, unless the last key change proved them all and
the database has not changed since (``coolify_migrate.state.proven``): then it reports that
proof, says so, and reads nothing; ``full=True`` (``--full``) reads every value regardless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.secret import Secret
from coolify_migrate.secrets import keys, values, verdicts
from coolify_migrate.secrets.reencrypt import ColumnRoll
from coolify_migrate.state import proven


@dataclass
class VerifyReport:
    key_source: str | None
    key_fingerprint: str | None
    key_check: str  # "match", "mismatch", "not recorded"
    counts: list[verdicts.ColumnCount] = field(default_factory=list)
    not_ciphertext: values.Named = field(default_factory=values.Named)
    unknown: values.Named = field(default_factory=values.Named)
    proven_at_ms: int | None = None  # read nothing: the key change at this time proved it all

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.counts)

    @property
    def ok(self) -> bool:
        return self.key_fingerprint is not None and not self.failed and self.key_check != "mismatch"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "key_source": self.key_source,
            "key_fingerprint": self.key_fingerprint,
            "key_check": self.key_check,
            "fields": len(self.counts),
            "fields_absent": [c.column for c in self.counts if c.absent],
            "values": sum(c.ok + c.failed for c in self.counts),
            "failed": self.failed,
            "not_ciphertext": self.not_ciphertext.as_dict(),
            "under_no_known_key": self.unknown.as_dict(),
            "columns": [c.as_dict() for c in self.counts],
            "proven_at_ms": self.proven_at_ms,
        }

    def lines(self) -> list[str]:
        out = [
            f"active key: {self.key_fingerprint or 'none'}"
            + (f" (from {self.key_source})" if self.key_source else ""),
            f"key check:  {self.key_check}",
        ]
        if self.proven_at_ms is not None:
            out.append(
                "checked:    by the key change of "
                + _when(self.proven_at_ms)
                + "; the database has not changed since (--full reads every value again)"
            )
        for c in self.counts:
            if c.absent:
                out.append(f"  {c.column:<40} absent (this database has no such column)")
                continue
            flag = ""
            if c.failed:
                others = ", ".join(f"{n} under {fp}" for fp, n in c.other_keys.items())
                flag = f"  <- FAILED ({others or 'under no known key'})"
            extra = f" {c.text:>4} not ciphertext" if c.text else ""
            out.append(
                f"  {c.column:<40} {c.ok:>8} ok {c.failed:>6} failed {c.null:>6} empty{extra}{flag}"
            )
        absent = sum(1 for c in self.counts if c.absent)
        out.append(
            f"fields:     {len(self.counts)} declared, {len(self.counts) - absent} present"
            + (f", {absent} absent" if absent else "")
        )
        if self.not_ciphertext.count:
            out.append(
                f"left as is: {self.not_ciphertext.count} values are not ciphertext: "
                + self.not_ciphertext.shown()
            )
        if self.unknown.count:
            out.append(
                f"unreadable: {self.unknown.count} values are under no known key: "
                + self.unknown.shown()
            )
        out.append(
            "verdict:    "
            + (
                "every value decrypts under the active key"
                if self.ok
                else f"NOT OK: {self.failed} values do not decrypt under the active key"
                + ("; the database records another key" if self.key_check == "mismatch" else "")
            )
        )
        return out


def verify(ctx: Context, *, full: bool = False) -> VerifyReport:
    """Every value of every declared field against the .env active key. Read-only."""
    env = instance.load_env(ctx)
    active = ctx.profile.active_key(env)
    if active is None:
        return VerifyReport(None, None, "not recorded")
    ctx.redactor.add(active.key)
    if not full:
        reused = _from_proof(ctx, active.source, active.key)
        if reused is not None:
            return reused
    conn = ctx.store().connect(readonly=True)
    try:
        cands = keys.candidates(ctx, env)
        others = [c for c in cands if c.key != active.key]
        analysis = keys.analyse(ctx, conn, [KeyCandidate("active", active.key), *others], full=True)
        check = verdicts.check_state(conn.read_meta().get("key_check"), active.key)
        report = VerifyReport(active.source, active.key.fingerprint, check)
        report.counts = verdicts.column_counts(ctx, analysis, active.key)
        report.not_ciphertext, report.unknown = analysis.text, analysis.unknown
        return report
    finally:
        conn.close()


def record_roll(
    ctx: Context,
    key: Secret,
    counts: list[ColumnRoll],
    not_ciphertext: values.Named,
    left: values.Named,
) -> None:
    """What a committed key change proved, for a later ``verify`` (``state.proven``): every
    ciphertext value re-encrypted under ``key`` and checked; values left as asked fail."""
    columns = [
        verdicts.ColumnCount(
            c.column,
            ok=c.reencrypted,
            failed=c.left,
            null=c.empty,
            text=c.text,
            absent=c.absent,
        )
        for c in counts
    ]
    proven.record(
        ctx,
        key,
        {
            "columns": [c.as_dict() for c in columns],
            "not_ciphertext": not_ciphertext.as_dict(),
            "under_no_known_key": left.as_dict(),
        },
    )


def _from_proof(ctx: Context, source: str, key: Secret) -> VerifyReport | None:
    doc = proven.holds(ctx, key)
    if doc is None:
        return None
    try:
        report = doc["report"]
        counts = [
            verdicts.ColumnCount(
                c["column"],
                ok=int(c["ok"]),
                failed=int(c["failed"]),
                null=int(c["null"]),
                text=int(c["not_ciphertext"]),
                other_keys={str(k): int(n) for k, n in c["under_other_keys"].items()},
                absent=bool(c["absent"]),
            )
            for c in report["columns"]
        ]
        named = [
            values.Named(int(report[k]["count"]), [str(x) for x in report[k]["labels"]])
            for k in ("not_ciphertext", "under_no_known_key")
        ]
        at = int(doc["at_ms"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a record this version cannot read: read every value instead
    if [c.column for c in counts] != [c.label for c in ctx.profile.encrypted_columns]:
        return None
    return VerifyReport(source, key.fingerprint, "match", counts, named[0], named[1], at)


def _when(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
