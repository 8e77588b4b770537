"""``secrets audit``: is the data key weak, and can we prove it?

Cheap checks come first (length, alphabet, an entropy estimate, known compromised values). The
decisive one is a search: a key of a form the app's old installers derived from the time (the
app says which, ``Profile.derived_form`` / ``Profile.find_seed``)
is recomputed for every millisecond in a window around each piece of install-time evidence the
instance holds; a match is proof, and the seed time is reported. The search runs nearest-first
(the key was made seconds before the ``.env`` was written), on every core. The audit is
read-only: it never writes a byte, so it may run at any time.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, MigrateError, UsageError
from coolify_migrate.core.store import Connection, Store
from coolify_migrate.core.times import parse_time
from coolify_migrate.secrets import verdicts
from coolify_migrate.secrets.key_form import KeyForm, key_form
from coolify_migrate.stores import names as backup_names

DEFAULT_WINDOW_S = 24 * 3600.0
_WINDOW = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_window(text: str) -> float:
    """``'90'`` or ``'90s'``, ``'30m'``, ``'6h'``, ``'2d'`` -> seconds."""
    found = _WINDOW.fullmatch(text.strip().lower())
    if not found or float(found.group(1)) <= 0:
        raise UsageError(f"--window {text!r} is not a duration", hint="e.g. 3600, 30m, 6h or 2d")
    return float(found.group(1)) * _UNITS[found.group(2)]


def iso(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- evidence of the install time ---------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    what: str
    ms: int

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "ms": self.ms, "time": iso(self.ms)}


def _birth_ms(path: Path) -> int | None:
    """File creation time: ``st_birthtime`` where Python has it, else Linux ``statx``."""
    st = os.stat(path)
    birth = getattr(st, "st_birthtime", None)
    if birth:
        return int(birth * 1000)
    try:
        statx = ctypes.CDLL(None, use_errno=True).statx
    except (OSError, AttributeError):
        return None
    buf = ctypes.create_string_buffer(256)  # struct statx
    at_fdcwd, statx_btime = -100, 0x800
    if statx(at_fdcwd, os.fsencode(path), 0, statx_btime, buf) != 0:
        return None
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & statx_btime:
        return None
    sec = int.from_bytes(buf.raw[80:88], "little", signed=True)
    nsec = int.from_bytes(buf.raw[88:92], "little")
    return sec * 1000 + nsec // 1_000_000 if sec > 0 else None


def _as_ms(value: object) -> int | None:
    """Prisma on SQLite stores DateTime as epoch ms; hand-made rows may hold ISO text."""
    if isinstance(value, int | float) and value > 0:
        return int(value if value > 10**11 else value * 1000)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if re.fullmatch(r"\d+(\.\d+)?", text):
                return _as_ms(float(text))
            zoned = re.search(r"(Z|[+-]\d\d:?\d\d)$", text)  # naive text is UTC in Prisma
            return parse_time(text if zoned else text.replace(" ", "T") + "Z")
        except UsageError:
            return None
    return None


def oldest_copy_ms(store: Store) -> tuple[str, int] | None:
    """The oldest copy the app (or its user) left beside the database (Coolify's
    ``prod.db_<ms>``, ``prod.db_<version>_<ms>``, a manual ``prod.db_<YYYYmmddHHMMSS>``). This
    tool's own backups (with a manifest) say nothing about the install time and are skipped."""
    found = [
        (c.time_ms, c.name)
        for c in store.siblings()
        if not c.path.with_name(backup_names.manifest_name(c.name)).exists()
    ]
    return (min(found)[1], min(found)[0]) if found else None


def gather_evidence(
    ctx: Context, conn: Connection | None, installed_at: str | None
) -> list[Evidence]:
    """Every hint of when the key was made, the most trustworthy first."""
    found: list[Evidence] = []
    if installed_at:
        found.append(Evidence("--installed-at", parse_time(installed_at)))
    with contextlib.suppress(OSError):
        found.append(Evidence(".env modified", os.stat(ctx.env_path).st_mtime_ns // 1_000_000))
    if conn is not None:
        for label, sql in ctx.profile.install_evidence_sql():
            try:
                ms = _as_ms(conn.scalar(sql))
            except MigrateError:
                continue
            if ms is not None:
                found.append(Evidence(label, ms))
    store = ctx.store()
    old = oldest_copy_ms(store)
    if old is not None:
        found.append(Evidence(f"oldest app backup {old[0]}", old[1]))
    if store.path is not None and store.path.exists():
        birth = _birth_ms(store.path)
        if birth is not None:
            found.append(Evidence("database file created", birth))
    return found


# -- the report ---------------------------------------------------------------------------------


@dataclass
class AuditReport:
    key_source: str
    key_fingerprint: str
    form: KeyForm
    evidence: list[Evidence]
    seed_ms: int | None = None
    searched: int = 0
    window_s: float = DEFAULT_WINDOW_S
    live_key: dict[str, Any] | None = None
    live_key_problem: str | None = None
    reasons: list[str] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)  # the app's other secrets

    @property
    def proven(self) -> bool:
        return self.seed_ms is not None

    @property
    def weak(self) -> bool:
        return bool(self.reasons) or any(o["reasons"] for o in self.others)

    def as_dict(self) -> dict[str, Any]:
        return {
            "weak": self.weak,
            "proven": self.proven,
            "seed_ms": self.seed_ms,
            "seed_time": iso(self.seed_ms) if self.seed_ms is not None else None,
            "reasons": list(self.reasons),
            "notes": list(self.form.notes),
            "key_source": self.key_source,
            "key_fingerprint": self.key_fingerprint,
            "length": self.form.length,
            "alphabet": self.form.alphabet,
            "entropy_bits": self.form.entropy_bits,
            "compromised": self.form.compromised,
            "date_seeded_form": self.form.date_seeded_form,
            "evidence": [e.as_dict() for e in self.evidence],
            "window_s": self.window_s,
            "searched": self.searched,
            "live_key": self.live_key,
            "live_key_problem": self.live_key_problem,
            "other_secrets": list(self.others),
        }

    def lines(self) -> list[str]:
        form = self.form
        out = [
            f"key:       {self.key_fingerprint} (from {self.key_source}), {form.length} "
            f"characters, {form.alphabet}, about {form.entropy_bits:.0f} bits"
        ]
        if self.seed_ms is not None:
            out.append(
                f"PROVEN date-seeded: the key is derived from the time {iso(self.seed_ms)} "
                f"({self.seed_ms} ms)"
            )
        elif form.date_seeded_form:
            out.append(f"not proven date-seeded: {self.searched} candidate times, no match")
        out.extend(f"evidence:  {e.what}: {iso(e.ms)}" for e in self.evidence)
        if self.live_key is not None:
            lk = self.live_key
            out.append(f"data key:  {lk['fingerprint']} (from {lk['source']}, by {lk['method']})")
        if self.live_key_problem:
            out.append(f"data key:  PROBLEM: {self.live_key_problem}")
        out.extend(f"note:      {n}" for n in form.notes)
        for other in self.others:
            state = "WEAK: " + "; ".join(other["reasons"]) if other["reasons"] else "not weak"
            where = f" (from {other['source']})" if other["source"] else ""
            out.append(
                f"{other['name'] + ':':<10} {other['fingerprint'] or 'not set'}{where}: {state}"
            )
        verdict = "WEAK: " + "; ".join(self.reasons) if self.reasons else "not weak"
        out.append(f"verdict:   {verdict}")
        if self.live_key_problem:
            out.append(
                "next:      'coolify-migrate secrets repair --dry-run' shows what Coolify's own "
                "prod.db_* copies can recover; or give the key with --key-file FILE"
            )
        elif self.reasons:
            out.append("next:      run 'coolify-migrate secrets roll' to replace it")
        for other in self.others:
            if other["reasons"]:
                out.append(
                    f"next:      'coolify-migrate secrets roll --secret {other['name']}' "
                    f"replaces the {other['name']} ({other['ends']})"
                )
        return out


def assess(
    ctx: Context,
    cand: KeyCandidate,
    *,
    conn: Connection | None,
    installed_at: str | None = None,
    window_s: float | None = None,
    workers: int | None = None,
) -> AuditReport:
    """Judge one key: face checks, then (date-seeded form only) the search. Read-only."""
    window = DEFAULT_WINDOW_S if window_s is None else window_s
    if window <= 0:
        raise UsageError("the search window must be positive")
    form = key_form(cand.key, ctx.profile)
    evidence = gather_evidence(ctx, conn, installed_at)
    report = AuditReport(
        cand.source,
        cand.key.fingerprint,
        form,
        evidence,
        window_s=window,
        reasons=list(form.reasons),
    )
    if form.date_seeded_form and evidence:  # only a key of that form can be date-seeded
        found = ctx.profile.find_seed(
            cand.key,
            [e.ms for e in evidence],
            int(window * 1000),
            workers=workers or os.cpu_count() or 1,
            out=ctx.out,
        )
        report.seed_ms, report.searched = found
        if report.seed_ms is not None:
            report.reasons.insert(
                0,
                f"date-seeded: derived from the install time "
                f"{iso(report.seed_ms)}; anyone who can guess it can "
                "recompute the key",
            )
    return report


def other_secrets(ctx: Context, env: Any) -> list[dict[str, Any]]:
    """The app's secrets besides the data key (Redash's cookie secret), judged on their face.
    Each dict holds the value as ``key`` (a ``Secret``) for the caller to compare, then drop."""
    out: list[dict[str, Any]] = []
    for spec in ctx.profile.secrets:
        if spec.encrypts:
            continue
        found = ctx.profile.resolve(env, spec)
        if found is None:
            reasons = ["not set"]
        else:
            ctx.redactor.add(found.key)
            form = key_form(found.key, ctx.profile, spec)
            reasons = list(form.reasons)
        out.append(
            {
                "name": spec.name,
                "role": spec.role,
                "ends": spec.rolling_ends,
                "source": found.source if found else None,
                "fingerprint": found.key.fingerprint if found else None,
                "reasons": reasons,
                "key": found.key if found else None,
            }
        )
    return out


def shared_with(ctx: Context, env: Any, cand: KeyCandidate) -> str | None:
    """Why the data key is weak for being another secret's value too (Redash's data key falls
    back to its cookie secret), or None."""
    for spec in ctx.profile.secrets:
        found = None if spec.encrypts else ctx.profile.resolve(env, spec)
        if found is not None and found.key == cand.key:
            return (
                f"the data key is the {spec.name}'s value ({cand.source}): whoever learns one "
                "holds both, and rolling one would move the other; a roll gives the data a key "
                "of their own"
            )
    return None


def audit(
    ctx: Context,
    *,
    installed_at: str | None = None,
    window_s: float | None = None,
    workers: int | None = None,
) -> AuditReport:
    """Audit the key that encrypts the data (else the .env active key). Never writes."""
    env = instance.load_env(ctx)
    store = ctx.store()
    conn = store.connect(readonly=True) if store.exists() else None
    try:
        verdict: verdicts.Verdict | None = None
        problem: str | None = None
        if conn is None:
            problem = f"no database at {store.where}"
        else:
            try:
                verdict = verdicts.live_key(ctx, conn, env)
            except KeyProblem as err:
                problem = err.message
        cand = (
            KeyCandidate(verdict.source or "data", verdict.key)
            if verdict is not None and verdict.key is not None
            else ctx.profile.active_key(env)
        )
        if cand is None:
            raise KeyProblem(
                f"{ctx.env_path} names no data key",
                hint="restore the .env from your backup; the key cannot be recreated",
            )
        ctx.redactor.add(cand.key)
        report = assess(
            ctx,
            cand,
            conn=conn,
            installed_at=installed_at,
            window_s=window_s,
            workers=workers,
        )
        report.live_key = verdict.as_dict() if verdict is not None else None
        report.live_key_problem = problem
        report.others = other_secrets(ctx, env)
        for o in report.others:
            del o["key"]
        shared = shared_with(ctx, env, cand)
        if shared:
            report.reasons.append(shared)
        return report
    finally:
        if conn is not None:
            conn.close()
