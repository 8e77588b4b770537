"""What a key analysis finds (``coolify_migrate.secrets.keys`` makes it): per candidate key how
many values it decodes and what that proves, per field how its values divide among keys, and the
analysis as a whole. Data only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.core.app import KeyCandidate, Profile
from coolify_migrate.core.secret import Secret
from coolify_migrate.crypto.codecs import Codec
from coolify_migrate.secrets import values


class FieldCodecs:
    """The codec of each declared field (its own, else the app's)."""

    def __init__(self, profile: Profile) -> None:
        self.default = profile.codec
        self.by_label = {c.label: c.codec or profile.codec for c in profile.encrypted_columns}

    def of(self, label: str) -> Codec:
        return self.by_label.get(label, self.default)


@dataclass
class KeyStats:
    cand: KeyCandidate
    decoded: int = 0
    failed: int = 0
    bits: float = 0.0
    established: bool = False
    by_field: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.cand.source,
            "fingerprint": self.cand.key.fingerprint,
            "decoded": self.decoded,
            "failed": self.failed,
            "evidence_bits": round(self.bits, 1),
            "established": self.established,
            "result": self.result,
        }

    @property
    def result(self) -> str:
        if self.established:
            return f"decrypts {self.decoded} values (proven)"
        if self.decoded and not self.failed:
            return f"decrypts all {self.decoded} values (too few to prove)"
        return f"decrypts {self.decoded}, not {self.failed}"


@dataclass
class FieldCount:
    name: str
    absent: bool = False
    cipher: int = 0
    text: int = 0
    empty: int = 0
    null: int = 0
    by_key: dict[str, int] = field(default_factory=dict)  # fingerprint -> values
    unknown: int = 0
    left: int = 0  # under no known key, and named by the operator to be left as they are

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.name,
            "absent": self.absent,
            "ciphertext": self.cipher,
            "not_ciphertext": self.text,
            "empty": self.empty,
            "null": self.null,
            "by_key": dict(self.by_key),
            "under_no_known_key": self.unknown,
            "left_as_asked": self.left,
        }


@dataclass
class Analysis:
    fields: values.Fields
    stats: list[KeyStats]
    primary: KeyCandidate | None
    method: str  # key-check, evidence, only-consistent, no-data, none
    full: bool
    text: values.Named = field(default_factory=values.Named)
    unknown: values.Named = field(default_factory=values.Named)
    left: values.Named = field(default_factory=values.Named)  # unknown, but named in ctx.leave
    left_labels: set[str] = field(default_factory=set)
    counts: dict[str, FieldCount] = field(default_factory=dict)
    order: dict[str, tuple[Secret, ...]] = field(default_factory=dict)  # field -> keys to try

    @property
    def keys(self) -> list[KeyCandidate]:
        """Established keys, the primary first."""
        out = [self.primary] if self.primary is not None else []
        out += [s.cand for s in self.stats if s.established and s.cand not in out]
        return out

    def under(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for count in self.counts.values():
            for fp, n in count.by_key.items():
                total[fp] = total.get(fp, 0) + n
        return total

    @property
    def cipher_values(self) -> int:
        return sum(c.cipher for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.primary.key.fingerprint if self.primary else None,
            "source": self.primary.source if self.primary else None,
            "method": self.method,
            "complete": self.full,
            "candidates": [s.as_dict() for s in self.stats],
            "fields": len(self.fields.present) + len(self.fields.absent),
            "fields_absent": [c.label for c in self.fields.absent],
            "values": self.cipher_values,
            "not_ciphertext": self.text.as_dict(),
            "under_no_known_key": self.unknown.as_dict(),
            "left_as_asked": self.left.as_dict(),
            "under": self.under(),
        }
