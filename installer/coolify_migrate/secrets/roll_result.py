"""What a key change reports: the outcome, the keys, the backup, counts per field, what was left."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.secrets import values
from coolify_migrate.secrets.reencrypt import ColumnRoll


@dataclass
class RollResult:
    rolled: bool
    outcome: str  # rolled, recovered, strong, dry-run
    old_fingerprint: str | None = None
    new_fingerprint: str | None = None
    counts: list[ColumnRoll] = field(default_factory=list)
    backup: str | None = None
    weak_reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_ciphertext: values.Named = field(default_factory=values.Named)
    left: values.Named = field(default_factory=values.Named)
    elapsed_s: float | None = None  # the whole command (set by the command, not by a dry run)
    downtime_s: float | None = None  # app stopped -> started again; None when it never stopped

    def as_dict(self) -> dict[str, Any]:
        return {
            "rolled": self.rolled,
            "outcome": self.outcome,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "backup": self.backup,
            "values": sum(c.values for c in self.counts),
            "reencrypted": sum(c.reencrypted for c in self.counts),
            "columns": [c.as_dict() for c in self.counts],
            "fields": len(self.counts),
            "fields_absent": [c.column for c in self.counts if c.absent],
            "not_ciphertext": self.not_ciphertext.as_dict(),
            "left_as_asked": self.left.as_dict(),
            "weak_reasons": list(self.weak_reasons),
            "notes": list(self.notes),
            "elapsed_s": self.elapsed_s,
            "downtime_s": self.downtime_s,
        }

    def lines(self) -> list[str]:
        head = {
            "rolled": f"rolled the data key {self.old_fingerprint} -> {self.new_fingerprint}",
            "recovered": f"completed an interrupted roll: the data key is {self.new_fingerprint}",
            "strong": f"the data key {self.old_fingerprint} is not weak: nothing to roll "
            "(--force rolls it anyway)",
            "dry-run": f"dry run: the data key {self.old_fingerprint} "
            + ("would be rolled" if self.weak_reasons else "would not be rolled")
            + "; nothing was changed",
        }[self.outcome]
        out = [head]
        out.extend(f"  weak: {r}" for r in self.weak_reasons)
        if self.backup:
            out.append(f"  backup: {self.backup}")
        verb = "would re-encrypt" if self.outcome == "dry-run" else "re-encrypted"
        for c in self.counts:
            if c.absent:
                out.append(f"  {c.column:<40} absent (this database has no such column)")
                continue
            extra = f" {c.text:>4} not ciphertext" if c.text else ""
            out.append(
                f"  {c.column:<40} {c.values:>8} values {c.empty:>6} empty{extra}  "
                f"{verb} {c.reencrypted}"
            )
        if self.counts:
            absent = sum(1 for c in self.counts if c.absent)
            out.append(
                f"  fields: {len(self.counts)} declared, {len(self.counts) - absent} present"
                + (f", {absent} absent" if absent else "")
            )
        if self.not_ciphertext.count:
            out.append(
                f"  left as is: {self.not_ciphertext.count} values that are not ciphertext: "
                + self.not_ciphertext.shown()
            )
        if self.left.count:
            out.append(
                f"  left as asked (--leave): {self.left.count} values under no known key, "
                "unchanged and still unreadable: " + self.left.shown()
            )
        out.extend(f"  note: {n}" for n in self.notes)
        if self.elapsed_s is not None:
            down = f"{self.downtime_s:.1f} s" if self.downtime_s is not None else "not measured"
            out.append(f"done in {self.elapsed_s:.1f} s, downtime {down} (app stopped -> started)")
        return out
