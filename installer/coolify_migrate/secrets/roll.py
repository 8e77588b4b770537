"""``secrets roll``: replace a weak data key, crash-safe at every step.

The durable steps, in order (each ends at a named checkpoint, see ``coolify_migrate.core.faults``):

1. guard clauses: the key that encrypts the data is identified (``coolify_migrate.secrets.keys``) and is the one
   ``.env`` says is active, unless the database's key-check value proves the other; else refuse;
2. a pinned pre-roll backup (unless the caller, the upgrade engine, already took one);
3. the run journal (``status`` shows an interrupted roll);
4. the old key, then the new *pending* key, written to the host keyring before the database is
   touched, so no crash can leave data under a key that exists nowhere else;
5. one transaction re-encrypts every column and records the new key-check value
   (``coolify_migrate.secrets.reencrypt``);
6. ``.env`` promoted: KEY = BETTER = new, the old key kept as ``COOLIFY_SECRET_KEY_OLD_<ms>``;
7. the keyring marks the new key active (the old one retired); 8. the journal is closed.

After a crash, ``recover`` decides from durable facts, not from the journal: a *pending* keyring
entry means a roll started; the database's key-check value says whether its transaction
committed. Committed: finish steps 6-8. Not committed: redo step 5 with the same pending key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from coolify_migrate import instance
from coolify_migrate.core import faults
from coolify_migrate.core.app import KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, MigrateError, Refused
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.secrets import keys, reencrypt, verdicts, verify
from coolify_migrate.secrets.keys import Analysis
from coolify_migrate.secrets.reencrypt import ColumnRoll
from coolify_migrate.secrets.roll_result import RollResult
from coolify_migrate.secrets.weakness import weakness
from coolify_migrate.state import journal
from coolify_migrate.state.keyring import KeyEntry, Keyring


class BackupRef(Protocol):
    """The backup a key change stands on (``coolify_migrate.backups.BackupInfo``): its name."""

    @property
    def name(self) -> str: ...


# Takes the pinned backup a standalone key change needs, given the key its values are under
# (``coolify_migrate.engine.keyops`` passes ``backups.create``; the upgrade engine has its own).
TakeBackup = Callable[[Secret], BackupRef]


OWN_KINDS = ("roll", "repair")  # journal kinds whose interrupted runs ``recover`` completes


class _Run:
    """The journal of this roll: our own (kind "roll") or the upgrade engine's, advanced."""

    def __init__(self, ctx: Context, doc: dict[str, Any] | None, *, own: bool) -> None:
        self.ctx, self.doc, self.own = ctx, doc, own

    def advance(self, phase: str, **data: Any) -> None:
        if self.doc is not None:
            journal.advance(self.ctx, self.doc, phase, **data)

    def finish(self, outcome: str, *, failed: bool = False) -> None:
        if self.doc is None:
            return
        if self.own:
            journal.finish(self.ctx, self.doc, outcome)
        else:
            phase = "roll:failed" if failed else "roll:done"
            journal.advance(self.ctx, self.doc, phase, roll_outcome=outcome)


def _start_app(ctx: Context, result: RollResult) -> None:
    try:
        ctx.runtime().start()
    except MigrateError as err:
        ctx.out.warn(f"the app could not be started again: {err.message}")
        result.notes.append(f"start the app by hand: {err.message}")


def _finalize(
    ctx: Context, new: Secret, run: _Run, result: RollResult, old: Secret | None = None
) -> None:
    """Steps 6-8, each idempotent: safe to repeat after a crash anywhere in them."""
    env = instance.load_env(ctx)
    if old is None:  # after a crash: .env still names the old key until it is promoted
        active = ctx.profile.active_key(env)
        old = active.key if active is not None and active.key != new else None
    ctx.profile.promote_key(env, new, old, ctx.now_ms())
    if env.changed():
        env.save(checkpoint="roll:env")
    Keyring(ctx).set_active(new, checkpoint="roll:keyring-active")
    if run.own:
        _start_app(ctx, result)
    run.finish(result.outcome)


def analyse(ctx: Context, conn: Connection, *, full: bool = True) -> Analysis:
    """Every value attributed to a proven key; refuses (nothing changed) when one is unreadable.

    ``full=False``: the keys proven on a sample only (``keys.SAMPLE_ROWS`` rows per table, each
    key established with a chance below 2^-40 of being wrong); the roll that follows attributes
    every value itself and rolls back at one no key proves (``reencrypt``)."""
    env = instance.load_env(ctx)
    cands = keys.candidates(ctx, env)
    analysis = keys.analyse(ctx, conn, cands, full=full)
    if analysis.primary is None:
        verdicts.identify(ctx, conn, cands)  # raises the KeyProblem that explains why
    if not full:
        return analysis
    if analysis.unknown.count:
        raise KeyProblem(
            f"{analysis.unknown.count} encrypted values are under no known key "
            f"({analysis.unknown.shown(3)}): another key, or values that do not decrypt to text "
            "(damaged); nothing was changed",
            hint="give their key with --key-file FILE, or name each value to leave as it is "
            "with --leave LABEL; values a re-roll garbled are recovered by 'coolify-migrate "
            "secrets repair'",
        )
    stray = sorted(ctx.leave - analysis.left_labels)
    if stray:
        raise Refused(
            f"--leave names {len(stray)} values that a known key reads or that do not exist "
            f"({', '.join(stray[:3])}); nothing was changed",
            hint="name only values the refusal listed as under no known key",
        )
    return analysis


def _identify(
    ctx: Context, conn: Connection, *, dry_run: bool, analysis: Analysis | None = None
) -> tuple[KeyCandidate, Analysis]:
    """Guard clauses: which keys are live, and may we trust the .env's key as the old key.
    ``analysis``: a full one this run already made (``analyse``), else one is made here."""
    env = instance.load_env(ctx)
    active = ctx.profile.active_key(env)
    if active is None:
        raise KeyProblem(
            f"{ctx.env_path} names no data key",
            hint="restore the .env from your backup; the key cannot be recreated",
        )
    analysis = analysis if analysis is not None else analyse(ctx, conn)
    primary = analysis.primary
    assert primary is not None
    held = {fp for fp, n in analysis.under().items() if n}
    if held and active.key.fingerprint not in held and analysis.method != "key-check":
        raise KeyProblem(
            f"the .env active key ({active.source}, {active.key.fingerprint}) does not encrypt the "
            f"data; {primary.source} ({primary.key.fingerprint}) does",
            hint="put the right key back as the active key in .env (or remove the wrong one), "
            "then run the roll again; nothing was changed",
        )
    if not dry_run:  # a roll keeps the old key in .env: refuse one it cannot write back
        verdicts.check_key_writable(primary.key, primary.source)
    if primary.key != active.key and not dry_run:
        # Proven by the key-check value; keep the stranger .env key too: never lose a key.
        Keyring(ctx).remember(active.key, status="retired", source=f".env {active.source} (unused)")
    return primary, analysis


def _committed(ctx: Context, new: Secret) -> bool:
    conn = ctx.store().connect(readonly=True)
    try:
        return conn.read_meta().get("key_check") == new.check_value
    finally:
        conn.close()


# The one transaction of a key change: writes every value under the new key (and the key-check
# value, and the caller's record) and returns the per-field counts. A roll re-encrypts
# (``coolify_migrate.secrets.reencrypt``); ``secrets repair`` writes recovered values (``coolify_migrate.secrets.repair``).
Change = Callable[[Connection, Secret, "dict[str, str] | None"], list[ColumnRoll]]


def rolling(ctx: Context, analysis: Analysis) -> Change:
    def change(conn: Connection, new: Secret, meta: dict[str, str] | None) -> list[ColumnRoll]:
        return reencrypt.reencrypt(ctx, conn, analysis, new, meta=meta)

    return change


def _transaction(
    ctx: Context,
    conn: Connection,
    change: Change,
    new: Secret,
    run: _Run,
    meta_extra: dict[str, str] | None,
    result: RollResult,
) -> None:
    """Step 5. An error before COMMIT leaves the old key in charge: the pending key is retired."""
    ctx.proofs.forget()  # the values move: what was proven of them no longer holds
    try:
        result.counts = change(conn, new, meta_extra)
    except Exception:
        if _committed(ctx, new):
            raise  # the commit happened; a later run of recover() finishes the roll
        Keyring(ctx).remember(new, status="retired", source="roll")
        run.finish("failed: rolled back, nothing changed", failed=True)
        if run.own:
            _start_app(ctx, result)
        raise
    # committed: every value was written under ``new`` and checked (``reencrypt``, ``repair``)
    ctx.proofs.every_value_under = new.check_value
    run.advance("roll:committed")


def roll_question(ctx: Context) -> str:
    stopped = (
        f"{ctx.profile.title} is stopped while the values are re-encrypted, and "
        if ctx.runtime_name != "none"
        else ""
    )
    return f"roll the data key? {stopped}every user is logged out"


def roll(
    ctx: Context,
    *,
    force: bool = False,
    dry_run: bool = False,
    backup: BackupRef | None = None,
    take_backup: TakeBackup | None = None,
    meta_extra: dict[str, str] | None = None,
    journal_doc: dict[str, Any] | None = None,
    analysis: Analysis | None = None,
) -> RollResult:
    """Roll the data key when it is weak (always with ``force``). See the module docstring.

    ``backup`` is the backup the caller already took (the upgrade engine); otherwise
    ``take_backup`` takes one once the app is stopped. ``analysis``: the full analysis the
    caller made before the stop (the upgrade's precheck), reused rather than made again; the
    re-encryption still attributes every value and stops at one no proven key reads."""
    own = journal_doc is None
    found = journal.current(ctx) if own else None
    if found is not None and (found.get("kind") != "roll" or dry_run):
        raise Refused(
            f"an interrupted {found.get('kind')} run ({found.get('run_id')}) is in the journal",
            hint="run 'coolify-migrate resume' (or 'rollback --last') first",
        )
    if dry_run and _latest_pending(Keyring(ctx)) is not None:
        raise Refused(
            "an interrupted key roll is pending; a dry run cannot describe it",
            hint="run 'coolify-migrate secrets roll' (or 'resume') to complete it",
        )
    if not dry_run:
        recovered = _recover(ctx, meta_extra=meta_extra, journal_doc=journal_doc)
        if recovered is not None:
            return recovered
    conn = ctx.store().connect(readonly=dry_run)
    try:
        cand, analysis = _identify(ctx, conn, dry_run=dry_run, analysis=analysis)
        result = RollResult(False, "strong", old_fingerprint=cand.key.fingerprint)
        result.not_ciphertext, result.left = analysis.text, analysis.left  # a sample's: see _roll
        if force:
            result.weak_reasons = ["--force"]
        else:
            result.weak_reasons = weakness(ctx, analysis, conn=conn).reasons
        if dry_run:
            result.outcome, result.counts = "dry-run", reencrypt.planned(ctx, analysis)
            if not result.weak_reasons:
                for c in result.counts:
                    c.reencrypted = 0
            return result
        if not result.weak_reasons:
            return result
        if own:
            ctx.agree(roll_question(ctx), what="the data key was not rolled")
        return _roll(
            ctx,
            conn,
            cand.key,
            analysis,
            result,
            backup=backup,
            meta_extra=meta_extra,
            run=_Run(ctx, journal_doc, own=own),
            take_backup=take_backup,
        )
    finally:
        conn.close()


def _roll(
    ctx: Context,
    conn: Connection,
    old: Secret,
    analysis: Analysis | None,
    result: RollResult,
    *,
    backup: BackupRef | None,
    meta_extra: dict[str, str] | None,
    run: _Run,
    take_backup: TakeBackup | None = None,
    change: Change | None = None,
    kind: str = "roll",
    held: list[KeyCandidate] | None = None,
) -> RollResult:
    stopped_ms = ctx.now_ms()
    if run.own:
        ctx.runtime().check()
        ctx.runtime().stop()  # nothing may write secrets under the old key once we start
    try:
        if backup is None:
            if take_backup is None:
                raise Refused(
                    "no backup to stand on: a key change is never made without one",
                    hint="run it through 'coolify-migrate secrets roll' or 'upgrade'",
                )
            backup = take_backup(old)
            faults.checkpoint("roll:backup")
        result.backup = backup.name
        if run.own:
            run.doc = journal.begin(ctx, kind, backup=backup.name, old_key=old.fingerprint)
        else:
            run.advance("roll:started", roll_backup=backup.name, old_key=old.fingerprint)
        keyring = Keyring(ctx)
        for keeper, what in _keepers(analysis, held):
            if keeper.key != old:  # every key that may hold values, before any value moves
                keyring.remember(keeper.key, status="retired", source=f"{what} ({keeper.source})")
        keyring.remember(
            old, status="active", source="live key before roll", checkpoint="roll:keyring-old"
        )
        new = ctx.profile.new_key()
        ctx.redactor.add(new)
        keyring.remember(new, status="pending", source="roll", checkpoint="roll:keyring-pending")
    except BaseException:  # an error, or SIGINT/SIGTERM (``core.interrupts``)
        if run.own:  # the database was not touched: close the journal, start the app again
            run.finish("failed before any change", failed=True)
            _start_app(ctx, result)
        raise
    run.advance("roll:key-pending", new_key=new.fingerprint)
    result.new_fingerprint = new.fingerprint
    plain = change is None
    if change is None:
        assert analysis is not None
        change = rolling(ctx, analysis)
    _transaction(ctx, conn, change, new, run, meta_extra, result)
    if analysis is not None and not analysis.full:  # the pass itself saw every value
        result.not_ciphertext = reencrypt.not_ciphertext(result.counts)
    if plain:  # every value re-encrypted and checked: ``secrets verify`` may reuse that
        verify.record_roll(ctx, new, result.counts, result.not_ciphertext, result.left)
    result.rolled, result.outcome = True, "rolled"
    result.notes.append("sessions signed with the old key end: users log in again")
    _finalize(ctx, new, run, result, old)
    if run.own:  # _finalize started the app again
        result.downtime_s = (ctx.now_ms() - stopped_ms) / 1000
    return result


def _keepers(
    analysis: Analysis | None, held: list[KeyCandidate] | None
) -> list[tuple[KeyCandidate, str]]:
    """The keys kept on the host before a change: those that hold values, and (for a roll
    from a sample analysis, which may meet values under them) every other candidate too."""
    if held is not None:
        return [(c, "held values") for c in held]
    if analysis is None:
        return []
    out = [(c, "held values") for c in analysis.keys]
    out += [(s.cand, "candidate key") for s in analysis.stats if s.cand not in analysis.keys]
    return out


def run_change(
    ctx: Context,
    conn: Connection,
    old: Secret,
    result: RollResult,
    *,
    change: Change,
    kind: str,
    held: list[KeyCandidate],
    take_backup: TakeBackup,
) -> RollResult:
    """A key change other than a plain roll (``secrets repair``), through the same durable steps:
    app stopped, pinned backup, journal, keys on the host first, one transaction, .env promoted."""
    return _roll(
        ctx,
        conn,
        old,
        None,
        result,
        backup=None,
        meta_extra=None,
        run=_Run(ctx, None, own=True),
        take_backup=take_backup,
        change=change,
        kind=kind,
        held=held,
    )


def recover(ctx: Context) -> RollResult | None:
    """Finish (or redo) an interrupted roll from durable facts; None when nothing is pending."""
    return _recover(ctx, meta_extra=None, journal_doc=None)


def _latest_pending(keyring: Keyring) -> KeyEntry | None:
    pending = [e for e in keyring.entries if e.status == "pending"]
    return max(pending, key=lambda e: e.added_ms) if pending else None


def _recover(
    ctx: Context, *, meta_extra: dict[str, str] | None, journal_doc: dict[str, Any] | None
) -> RollResult | None:
    current = journal.current(ctx)
    own_doc = current if current is not None and current.get("kind") in OWN_KINDS else None
    run = _Run(ctx, own_doc or journal_doc, own=own_doc is not None)
    keyring = Keyring(ctx)
    entry = _latest_pending(keyring)
    if entry is None:
        if own_doc is not None:  # stopped before its key was recorded, or after it was activated
            done = keyring.find(own_doc["data"].get("new_key") or "-")
            result = RollResult(False, "recovered")
            run.finish(
                "completed" if done and done.status == "active" else "abandoned before any change"
            )
            _start_app(ctx, result)
        return None
    new = entry.key
    result = RollResult(
        True,
        "recovered",
        new_fingerprint=new.fingerprint,
        backup=(own_doc or journal_doc or {}).get("data", {}).get("backup"),
    )
    conn = ctx.store().connect()
    old: Secret | None = None
    try:
        ctx.out.info(f"an interrupted key roll to {new.fingerprint} was found; completing it")
        if conn.read_meta().get("key_check") != new.check_value:  # not committed: redo it
            if run.own:
                ctx.runtime().stop()
            if own_doc is not None and own_doc.get("kind") == "repair":
                from coolify_migrate.secrets import repair

                change, old = repair.redo(ctx, conn)
            else:
                analysis = analyse(ctx, conn)
                assert analysis.primary is not None
                old = analysis.primary.key if analysis.primary.key != new else None
                change = rolling(ctx, analysis)
            result.old_fingerprint = old.fingerprint if old is not None else None
            if old is not None:
                _transaction(ctx, conn, change, new, run, meta_extra, result)
        if not result.counts:  # the crashed run's transaction committed every value
            committed = keys.analyse(ctx, conn, [KeyCandidate("new", new)], full=True)
            result.counts = reencrypt.planned(ctx, committed)
    finally:
        conn.close()
    _finalize(ctx, new, run, result, old)
    return result
