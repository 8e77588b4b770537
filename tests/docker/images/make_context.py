"""Write the generated part of the test app image's build context (run by scripts/docker-rig.sh).

``schema.sql`` is the demo fixture's ``SCHEMA`` (v3's real schema) and ``garble.sql`` overwrites
every field the Coolify v3 profile lists as re-encrypted by the app's own roll, so the image cannot
drift from what the tool believes.

Usage: ``python tests/docker/images/make_context.py DIR``
"""

from __future__ import annotations

import sys
from pathlib import Path

from coolify_migrate.apps.coolify_v3.demo import SCHEMA
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3


def garble_sql() -> str:
    """SQL that replaces each encrypted value by random ciphertext of the same length.

    The result still parses as v3's ``{"iv":"<32 hex>","content":"<hex>"}`` format, as the real
    app's output does after a roll with the wrong old key: only decrypting reveals the damage.
    """
    lines = ["BEGIN IMMEDIATE;"]
    for col in CoolifyV3.encrypted_columns:
        if col.missed_by_app_roll:
            continue  # v3's roll never touched the legacy per-service fields
        content = f"json_extract(\"{col.column}\", '$.content')"
        lines.append(
            f'UPDATE "{col.table}" SET "{col.column}" = '
            '\'{"iv":"\' || lower(hex(randomblob(16))) || \'","content":"\' || '
            f"CASE WHEN length({content}) > 1 "
            f"THEN lower(hex(randomblob(length({content}) / 2))) ELSE '' END || '\"}}' "
            f'WHERE "{col.column}" IS NOT NULL AND json_valid("{col.column}");'
        )
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make_context.py DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    (out / "schema.sql").write_text(SCHEMA.strip() + "\n", encoding="utf-8")
    (out / "garble.sql").write_text(garble_sql(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
