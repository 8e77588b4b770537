"""The encrypted values of an app's database: which fields exist, and what each stored value is.

Every field the profile declares is accounted for: a table or column an older database does not
have yet is reported as *absent*, never skipped in silence. Each stored value is one of:

- ``null`` (SQL NULL) or ``empty`` (the empty string, which some v3 code paths stored instead of
  ciphertext): no secret, left as it is;
- ``text``: something that is not the codec's ciphertext (text that is not JSON, or ciphertext
  followed by `` || ''`` as a GlitchTip migration stored it): counted and named by
  ``Table.column.id``, left byte-identical by every change, never blocking one;
- ``cipher``: the codec's own format; which key it is under is ``coolify_migrate.secrets.keys``'s business.

Values stream through the store (``coolify_migrate.core.store``) in batches, so memory stays
flat at any size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coolify_migrate.core.app import EncryptedColumn
from coolify_migrate.core.store import Fields

__all__ = ["BATCH", "NAMED_MAX", "Fields", "Named", "kind", "label", "parts"]
from coolify_migrate.crypto.codecs import Codec

BATCH = 2000
NAMED_MAX = 50  # values named one by one in a report; the rest are counted


def kind(codec: Codec, stored: Any) -> str:
    if stored is None:
        return "null"
    if stored == "":
        return "empty"
    if parts(codec, stored) is None:
        return "text"
    return "cipher"


def parts(codec: Codec, stored: Any) -> tuple[bytes, bytes] | None:
    """(iv, content) when ``stored`` is ciphertext (``kind`` says "cipher"), else None."""
    if not isinstance(stored, str) or not stored:
        return None
    return codec.parts(stored)


def label(column: EncryptedColumn, row_id: Any) -> str:
    return f"{column.label}.{row_id}"


@dataclass
class Named:
    """A count with the first few ``Table.column.id`` labels, for reports."""

    count: int = 0
    labels: list[str] = field(default_factory=list)

    def add(self, where: str) -> None:
        self.count += 1
        if len(self.labels) < NAMED_MAX:
            self.labels.append(where)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "labels": list(self.labels)}

    def shown(self, n: int = 5) -> str:
        more = f" and {self.count - n} more" if self.count > n else ""
        return ", ".join(self.labels[:n]) + more
