"""Drive tests/node/v3cipher.js: Node's crypto as an independent v3 implementation."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "node" / "v3cipher.js"


def node_available() -> bool:
    return shutil.which("node") is not None


def run(requests: list[dict[str, Any]]) -> list[Any]:
    """Send many requests in one Node process; returns each result, in order."""
    payload = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run(
        ["node", str(SCRIPT)],
        input=payload,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    # split("\n"), not splitlines(): Node writes U+0085, U+2028 and U+001C..U+001E raw inside
    # JSON strings, and splitlines() would cut a result there.
    return [json.loads(line)["result"] for line in proc.stdout.split("\n") if line.strip()]


def decrypt_all(key: str, values: list[str]) -> list[str]:
    return run([{"op": "decrypt", "key": key, "value": v} for v in values])


def encrypt_all(key: str, plaintexts: list[str]) -> list[str]:
    return run([{"op": "encrypt", "key": key, "plaintext": p} for p in plaintexts])


def v3_decrypt_all(key: str, values: list[str]) -> list[str | None]:
    """What v3's own ``decrypt`` returned for each value (lossy text, or the stored text)."""
    return run([{"op": "v3decrypt", "key": key, "value": v} for v in values])


def v3_roll_all(old: str, new: str, values: list[str | None]) -> list[str | None]:
    """What v3's start-up roll wrote for each value under (old, new); None: left unchanged."""
    return run([{"op": "v3roll", "old": old, "new": new, "value": v} for v in values])
