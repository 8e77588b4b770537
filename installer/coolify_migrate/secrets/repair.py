"""``secrets repair``: an instance Coolify's own re-roll garbled, put back under one strong key.

From 3.12.33, every start of a v3 container whose environment had KEY != BETTER re-encrypted every
value from KEY to BETTER. After the first roll the data were under BETTER, so each later start
decrypted them with the wrong "old" key and wrote the garbage back, encrypted under the new one
(v3 has no MAC: nothing failed). Before each roll it copied ``prod.db`` beside itself
(``prod.db_<ms>``, later ``prod.db_<tag>_<ms>``): the copies hold every earlier generation.

Per value (``Table.column.id``), newest first, through the live database and then every copy:

1. a value identical to the one before it in time is the same value: look further back;
2. a value V that decrypts, under some known key, to exactly what v3's roll would have written for
   the earlier value W of the same row under some known "old" key
   (``coolify_migrate.apps.coolify_v3.node_roll.reroll_plaintext``: Node's lossy decoding and JavaScript's trim,
   reproduced byte for byte) *is* that roll's garbage: the real value is W's, and the chain goes on
   from W (a value may have been re-rolled several times);
3. otherwise the value is what it is: its plaintext, when it is under a proven key
   (``coolify_migrate.secrets.keys``: the same evidence rule, over the chain ends of all values together).

Every proven value is then written under one fresh key in one verified transaction (the legacy
fields v3 never rolled included), with the host ``.env`` KEY = BETTER = that key, through the
same crash-safe steps as ``secrets roll`` (``coolify_migrate.secrets.roll``). Values written after the oldest copy
are kept: the documented manual recovery (restore the oldest ``prod.db_<ms>``) loses them. Values
that are not ciphertext stay byte-identical; a value whose chain ends under no known key is named
and left as it is. A false match in step 2 needs a legitimate new value to equal, byte for byte,
the garbage of its predecessor: for a value of n bytes that happens with probability about
2^(-0.8 n).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.app import EncryptedColumn, KeyCandidate
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, KeyProblem, MigrateError, Refused, UsageError
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection, Sibling
from coolify_migrate.crypto.codecs import DecryptError
from coolify_migrate.secrets import attribution, keys, roll, values
from coolify_migrate.secrets.reencrypt import ColumnRoll
from coolify_migrate.secrets.roll_result import RollResult
from coolify_migrate.state import journal

KEPT, RECOVERED, AS_IS, RESTORED_TEXT, UNPROVEN = (
    "kept",
    "recovered",
    "as-is",
    "restored-text",
    "unproven",
)


@dataclass
class Fix:
    column: EncryptedColumn
    rowid: int
    label: str
    status: str
    source: str = "current"  # where the value's real content was found
    generations: int = 0  # re-roll garbage layers undone
    raw: bytes | None = None  # the plaintext to write under the new key
    text: str | None = None  # or the exact stored text to put back
    key: Secret | None = None  # the key the value was found under


@dataclass
class RepairPlan:
    fixes: list[Fix]
    copies: list[Sibling]
    keys: list[KeyCandidate]  # proven keys the values were found under
    fields: values.Fields
    counts: dict[str, int] = field(default_factory=dict)
    named: dict[str, values.Named] = field(default_factory=dict)
    suspect: values.Named = field(default_factory=values.Named)

    @property
    def needs_change(self) -> bool:
        return any(f.status in (KEPT, RECOVERED, RESTORED_TEXT) for f in self.fixes)


@dataclass
class RepairReport:
    dry_run: bool
    plan: RepairPlan
    roll: RollResult | None = None

    @property
    def unproven(self) -> int:
        return self.plan.counts.get(UNPROVEN, 0)

    def as_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "dry_run": self.dry_run,
            "outcome": ("dry-run" if self.dry_run else self.roll.outcome if self.roll else "none"),
            "copies": [c.name for c in plan.copies],
            "keys": [c.key.fingerprint for c in plan.keys],
            "fields": len(plan.fields.present) + len(plan.fields.absent),
            "fields_absent": [c.label for c in plan.fields.absent],
            "counts": dict(plan.counts),
            "recovered": plan.named.get(RECOVERED, values.Named()).as_dict(),
            "unproven": plan.named.get(UNPROVEN, values.Named()).as_dict(),
            "not_ciphertext": plan.named.get(AS_IS, values.Named()).as_dict(),
            "suspect": plan.suspect.as_dict(),
            "new_fingerprint": self.roll.new_fingerprint if self.roll else None,
            "backup": self.roll.backup if self.roll else None,
        }

    def lines(self) -> list[str]:
        plan, c = self.plan, self.plan.counts
        head = "dry run: nothing was changed" if self.dry_run else "repaired"
        if not self.dry_run and self.roll is None:
            head = "nothing to repair"
        out = [head]
        out.append(
            f"  copies searched: {len(plan.copies)}"
            + (f" ({', '.join(x.name for x in plan.copies[:4])}" if plan.copies else "")
            + (" ...)" if len(plan.copies) > 4 else ")" if plan.copies else "")
        )
        out.append(f"  proven keys:     {', '.join(k.key.fingerprint for k in plan.keys) or '-'}")
        out.append(f"  kept:            {c.get(KEPT, 0)} values under a known key")
        out.append(
            f"  recovered:       {c.get(RECOVERED, 0)} values a re-roll had garbled"
            + (f" ({plan.named[RECOVERED].shown(3)})" if c.get(RECOVERED) else "")
        )
        if c.get(RESTORED_TEXT):
            out.append(f"  restored text:   {c[RESTORED_TEXT]} non-ciphertext values put back")
        out.append(
            f"  left as is:      {c.get(AS_IS, 0)} not ciphertext, {c.get('empty', 0)} empty"
        )
        if c.get(UNPROVEN):
            out.append(
                f"  UNPROVEN:        {c[UNPROVEN]} values under no known key, left as they are: "
                + plan.named[UNPROVEN].shown()
            )
        if plan.suspect.count:
            out.append(
                f"  suspect:         {plan.suspect.count} kept values hold U+FFFD (garbage whose "
                f"earlier value no copy holds?): {plan.suspect.shown(3)}"
            )
        if plan.fields.absent:
            out.append(f"  fields absent:   {len(plan.fields.absent)} (older schema)")
        if self.roll is not None and self.roll.rolled:
            out.append(
                f"  every proven value is now under {self.roll.new_fingerprint}; "
                "KEY = BETTER = it in .env"
            )
            if self.roll.backup:
                out.append(f"  backup before the repair: {self.roll.backup}")
        elif self.dry_run and plan.needs_change:
            out.append("  would put every proven value under one new key (KEY = BETTER)")
        return out


# -- the plan ------------------------------------------------------------------------------------


def make_plan(
    ctx: Context, conn: Connection, cands: list[KeyCandidate], copies: list[Sibling]
) -> RepairPlan:
    """Resolve every value (see the module docstring). Read-only."""
    codecs = keys.FieldCodecs(ctx.profile)
    model = ctx.profile.reroll_plaintext
    store = ctx.store()
    found = conn.fields(ctx.profile.encrypted_columns)
    opened: list[tuple[Sibling, Connection]] = []
    for copy in reversed(copies):  # newest first
        try:
            opened.append((copy, store.snapshot(copy.path)))
        except (MigrateError, sqlite3.DatabaseError):
            ctx.out.warn(f"{copy.name} is not a readable copy of the database: skipped")
    fixes: list[Fix] = []
    ends: list[tuple[Fix, str, bytes, bytes]] = []
    witnesses: set[str] = set()  # keys proven by a re-roll match
    try:
        for table, columns in found.by_table().items():
            names = [c.column for c in columns]
            older = [
                (copy.name, c.by_id(table, names, ctx.profile.id_column)) for copy, c in opened
            ]
            for rows in conn.rows(table, names, id_column=ctx.profile.id_column):
                for row in rows:
                    for i, column in enumerate(columns):
                        history = [("current", row[2 + i])]
                        history += [(name, m[row[1]][i]) for name, m in older if row[1] in m]
                        fix, parts = _resolve(
                            codecs.of(column.label),
                            cands,
                            column,
                            row[0],
                            row[1],
                            history,
                            witnesses,
                            model,
                        )
                        fixes.append(fix)
                        if parts is not None:
                            ends.append((fix, column.label, *parts))
    finally:
        for _, c in opened:
            c.close()
    proven = _attribute(codecs, cands, ends, [c.label for c in found.present], witnesses)
    plan = RepairPlan(fixes, copies, proven, found)
    for fix in fixes:
        plan.counts[fix.status] = plan.counts.get(fix.status, 0) + 1
        plan.named.setdefault(fix.status, values.Named()).add(fix.label)
        if fix.status == KEPT and fix.raw is not None and "\ufffd".encode() in fix.raw:
            plan.suspect.add(fix.label)
    return plan


def _resolve(
    codec: Any,
    cands: list[KeyCandidate],
    column: EncryptedColumn,
    rowid: int,
    row_id: Any,
    history: list[tuple[str, Any]],
    witnesses: set[str],
    model: Callable[[str, Secret], bytes | None],
) -> tuple[Fix, tuple[bytes, bytes] | None]:
    """Follow one value back through its history; returns the fix and, when the chain ends in
    ciphertext, its (iv, content) for the key attribution."""
    where = values.label(column, row_id)
    at, generations = 0, 0
    while True:
        source, value = history[at]
        what = values.kind(codec, value)
        if what in ("null", "empty"):
            status = "empty" if generations == 0 else RESTORED_TEXT
            return Fix(column, rowid, where, status, source, generations, text=value), None
        if what == "text":
            status = AS_IS if generations == 0 else RESTORED_TEXT
            return Fix(column, rowid, where, status, source, generations, text=value), None
        parts = keys.split(codec, value)
        earlier = next((j for j in range(at + 1, len(history)) if history[j][1] != value), None)
        if earlier is not None:
            by = _reroll_key(codec, cands, parts, history[earlier][1], model)
            if by is not None:
                witnesses.add(by.key.fingerprint)
                at, generations = earlier, generations + 1
                continue
        status = KEPT if generations == 0 else RECOVERED
        return Fix(column, rowid, where, status, source, generations), parts


def _reroll_key(
    codec: Any,
    cands: list[KeyCandidate],
    parts: tuple[bytes, bytes],
    earlier: Any,
    model: Callable[[str, Secret], bytes | None],
) -> KeyCandidate | None:
    """The known key under which the value (iv, content) decrypts to exactly what v3's roll
    wrote for ``earlier`` under a known old key, if there is one. Such a match is itself proof
    that the key is real: a wrong key would have to reproduce every byte."""
    if not isinstance(earlier, str) or not earlier:
        return None
    iv, content = parts
    wrote = {model(earlier, c.key) for c in cands}
    wrote = {w for w in wrote if w is not None and len(w) == len(content)}
    if not wrote:
        return None
    for c in cands:
        try:
            if codec.decrypt_split(c.key, iv, content) in wrote:
                return c
        except DecryptError:
            continue  # not a key this codec can use (wrong length)
    return None


def _attribute(
    codecs: keys.FieldCodecs,
    cands: list[KeyCandidate],
    ends: list[tuple[Fix, str, bytes, bytes]],
    labels: list[str],
    witnesses: set[str],
) -> list[KeyCandidate]:
    """The chain ends' keys: proven by the evidence rule over all of them together, or by a
    re-roll match (``witnesses``); fills each fix."""
    sample = [(label, iv, content) for _, label, iv, content in ends]
    stats = [keys.key_stats(codecs, c, sample) for c in cands]
    proven = [
        s.cand
        for s in sorted(stats, key=lambda s: -s.decoded)
        if s.established or s.cand.key.fingerprint in witnesses
    ]
    if not proven:  # few values: the one key that reads them all, if there is exactly one
        whole = [s.cand for s in stats if s.decoded and not s.failed]
        proven = whole if len(whole) == 1 else []
    order = keys.field_orders(proven, stats, labels)
    by_label: dict[str, list[tuple[Fix, bytes, bytes]]] = {}
    for fix, label, iv, content in ends:
        by_label.setdefault(label, []).append((fix, iv, content))
    for label, group in by_label.items():
        items = [(iv, content) for _, iv, content in group]
        found = attribution.attribute(codecs.of(label), order.get(label, ()), items)
        for (fix, _, _), (key, raw) in zip(group, found, strict=True):
            if key is None:
                fix.status = UNPROVEN
            else:
                fix.key, fix.raw = key, raw
    return proven


# -- the change ----------------------------------------------------------------------------------


def _change(ctx: Context, plan: RepairPlan) -> roll.Change:
    codecs = keys.FieldCodecs(ctx.profile)

    def change(conn: Connection, new: Secret, meta: dict[str, str] | None) -> list[ColumnRoll]:
        counts = {c.label: ColumnRoll(c.label) for c in ctx.profile.encrypted_columns}
        for column in plan.fields.absent:
            counts[column.label].absent = True
        with conn.transaction("repair"):
            for fix in plan.fixes:
                count = counts[fix.column.label]
                if fix.status in ("empty", AS_IS, UNPROVEN):
                    count.empty += fix.status == "empty"
                    count.text += fix.status != "empty"
                    continue
                stored: str | None
                codec = codecs.of(fix.column.label)
                if fix.raw is not None:
                    stored = codec.encrypt_raw(new, fix.raw)
                    if codec.decrypt_split(new, *keys.split(codec, stored)) != fix.raw:
                        raise ChangeFailed(f"{fix.label}: the new value does not read back")
                    count.values += 1
                    count.reencrypted += 1
                    if fix.key is not None:
                        fp = fix.key.fingerprint
                        count.from_keys[fp] = count.from_keys.get(fp, 0) + 1
                else:
                    stored = fix.text
                    count.text += 1
                table, col = fix.column.table, fix.column.column
                done = conn.update(table, [col], [(stored, fix.rowid)])
                if done != 1:
                    raise ChangeFailed(f"{fix.label}: the row is gone; nothing was changed")
            conn.write_meta(key_check=new.check_value, **(meta or {}))
        return list(counts.values())

    return change


# -- the command ---------------------------------------------------------------------------------


def _prepare(ctx: Context, conn: Connection) -> tuple[RepairPlan, Secret]:
    env = instance.load_env(ctx)
    active = ctx.profile.active_key(env)
    if active is None:
        raise KeyProblem(
            f"{ctx.env_path} names no data key",
            hint="restore the .env from your backup, or give the keys with --key-file FILE",
        )
    cands = keys.candidates(ctx, env)
    plan = make_plan(ctx, conn, cands, ctx.store().siblings())
    if not plan.keys and plan.counts.get(UNPROVEN):
        raise KeyProblem(
            "no known key reads the data, even through Coolify's copies",
            hint="give the keys you have with --key-file FILE (one per line), for example the "
            "lines of the app container's /app/.env",
        )
    return plan, active.key


def _no_backup(key: Secret) -> roll.BackupRef:
    raise Refused(
        "no backup to stand on: a repair is never made without one",
        hint="run it through 'coolify-migrate secrets repair'",
    )


def redo(ctx: Context, conn: Connection) -> tuple[roll.Change, Secret]:
    """For ``roll.recover``: the same repair again (its transaction did not commit)."""
    plan, old = _prepare(ctx, conn)
    return _change(ctx, plan), old


def repair(
    ctx: Context, *, dry_run: bool = False, take_backup: roll.TakeBackup | None = None
) -> RepairReport:
    """Recover what a re-roll garbled and put every value under one new key (see the docstring).
    ``take_backup`` takes the pinned backup the change stands on (required unless ``dry_run``)."""
    if not ctx.profile.repairs_rerolls:
        raise UsageError(
            f"{ctx.profile.title} never rolled its own keys: there is nothing to repair",
            hint="'coolify-migrate secrets verify' and 'secrets roll' cover its keys",
        )
    found = journal.current(ctx)
    if found is not None:
        raise Refused(
            f"an interrupted {found.get('kind')} run ({found.get('run_id')}) is in the journal",
            hint="run 'coolify-migrate resume' (or 'rollback --last') first",
        )
    if not dry_run and roll.recover(ctx) is not None:
        ctx.out.info("an interrupted key change was completed first")
    conn = ctx.store().connect(readonly=dry_run)
    try:
        plan, old = _prepare(ctx, conn)
        report = RepairReport(dry_run, plan)
        if dry_run or not plan.needs_change:
            return report
        ctx.agree(roll.roll_question(ctx), what="nothing was repaired")
        result = RollResult(False, "rolled", old_fingerprint=old.fingerprint)
        for cand in plan.keys:
            ctx.redactor.add(cand.key)
        report.roll = roll.run_change(
            ctx,
            conn,
            old,
            result,
            change=_change(ctx, plan),
            kind="repair",
            held=plan.keys,
            take_backup=take_backup or _no_backup,
        )
        return report
    finally:
        conn.close()
