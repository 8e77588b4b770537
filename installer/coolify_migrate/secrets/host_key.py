"""The data key kept on the host, where the app's start can never re-roll it.

Coolify v3 from 3.12.33 re-encrypted every secret at each start of its container when the key it
was started with (``COOLIFY_SECRET_KEY``) differed from the one it should use
(``COOLIFY_SECRET_KEY_BETTER``, from its environment or its own ``/app/.env``). Its own roll kept the
new key only in that ``/app/.env``, so each restart re-rolled with the wrong old key. Two guards:

- ``settle`` (before anything starts the app): the key the data are under is proven
  (``coolify_migrate.secrets.keys``, with the container's own keys among the candidates) and written to the
  host ``.env`` as KEY = BETTER, the previous key kept. A key that only the container knew is
  thereby *adopted*, with no re-encryption: the data do not move, the next start changes nothing.
- ``Snapshot`` (around a start): a digest of every stored encrypted value before the app starts,
  compared once it is healthy. A value the app changed in place at start is a re-roll: the caller
  treats it as a failed start and rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed
from coolify_migrate.core.secret import Secret
from coolify_migrate.core.store import Connection
from coolify_migrate.secrets import keys, verdicts
from coolify_migrate.state.keyring import Keyring


def _live_key(ctx: Context, conn: Connection) -> tuple[Secret, str] | None:
    env = instance.load_env(ctx)
    verdict = verdicts.identify(ctx, conn, keys.candidates(ctx, env))
    if verdict.key is None:
        return None
    if verdict.method == "no-data":  # nothing encrypted yet: the key the app uses now
        inside = ctx.container_keys()
        active = ctx.profile.active_key(env)
        chosen = inside[0] if inside else active
        return (chosen.key, chosen.source) if chosen is not None else None
    return verdict.key, verdict.source or "data"


def settle(ctx: Context) -> list[str]:
    """Make the host ``.env`` name the data's key as the one the app starts with (see the module
    docstring); returns what was done, for the output. The caller holds the lock."""
    store = ctx.store()
    if not store.exists():
        return []
    conn = store.connect(readonly=True)
    try:
        found = _live_key(ctx, conn)
    finally:
        conn.close()
    if found is None:
        return []
    live, source = found
    env = instance.load_env(ctx)
    if ctx.profile.start_safe(env, live):
        return []
    on_host = any(c.key == live for c in ctx.profile.key_candidates(env))
    ring = Keyring(ctx)
    for cand in ctx.container_keys():  # every key the container knew is kept on the host
        if ring.find(cand.key.fingerprint) is None:
            ring.remember(cand.key, status="retired", source=cand.source)
    active = ctx.profile.active_key(env)
    old = active.key if active is not None and active.key != live else None
    if old is not None and ring.find(old.fingerprint) is None:
        ring.remember(old, status="retired", source=f".env {active.source if active else ''}")
    ctx.profile.promote_key(env, live, old, ctx.now_ms())
    env.save(checkpoint="settle:env")
    ring.set_active(live, checkpoint="settle:keyring")
    if not on_host:
        return [
            f"adopted the data key {live.fingerprint} that only the app container knew "
            f"({source}): .env now names it as KEY and BETTER, nothing was re-encrypted"
        ]
    return [
        f".env now names the data key {live.fingerprint} as KEY and BETTER, so the app's start "
        "cannot re-encrypt anything"
    ]


@dataclass
class Snapshot:
    """Digests of every encrypted field's stored values, up to the last row before a start."""

    digests: dict[str, tuple[Any, str]]  # field -> (last row key, digest)

    @classmethod
    def take(cls, ctx: Context) -> Snapshot | None:
        store = ctx.store()
        if not store.exists():
            return None
        conn = store.connect(readonly=True)
        try:
            digests = {}
            present = conn.fields(ctx.profile.encrypted_columns).present
            bar = ctx.out.progress("digesting every encrypted field", len(present), "fields")
            try:
                for column in present:
                    last = conn.last_key(column.table)
                    digests[column.label] = (last, conn.digest(column.table, column.column, last))
                    bar.advance()
            finally:
                bar.close()
            return cls(digests)
        finally:
            conn.close()

    def changed(self, ctx: Context) -> list[str]:
        """Fields whose values (of the rows that existed before) are no longer the same."""
        conn = ctx.store().connect(readonly=True)
        try:
            out = []
            present = conn.fields(ctx.profile.encrypted_columns).present
            bar = ctx.out.progress("comparing every encrypted field", len(present), "fields")
            try:
                for column in present:
                    last, digest = self.digests.get(column.label, (0, ""))
                    if digest and conn.digest(column.table, column.column, last) != digest:
                        out.append(column.label)
                    bar.advance()
            finally:
                bar.close()
            return out
        finally:
            conn.close()

    def check(self, ctx: Context, *, what: str) -> None:
        changed = self.changed(ctx)
        if changed:
            raise ChangeFailed(
                f"the app changed encrypted values in {len(changed)} fields when it started "
                f"({', '.join(changed[:3])}): its start re-encrypted them ({what})",
                hint="the instance is rolled back; run 'coolify-migrate secrets verify'",
            )
