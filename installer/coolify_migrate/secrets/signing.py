"""Rolling a secret that encrypts nothing (Redash's cookie secret: it signs sessions, CSRF tokens
and invite and password-reset links).

No stored value moves, so there is no transaction: what must not happen is the data key moving
with it. An app whose data key falls back to this secret (Redash, when ``REDASH_SECRET_KEY`` is
unset) would read its data with the new value and find garbage, so the data key is first written
out explicitly under its own name, with the value the app uses now. Then, in the same atomic
write of the settings file, the new value replaces the old, which is kept under ``keep_as`` (and
in the keyring: a data key that once fell back to it may still be needed). The caller recreates
the services from the settings file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coolify_migrate import instance
from coolify_migrate.core.app import SecretSpec
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, UsageError
from coolify_migrate.state.keyring import Keyring


@dataclass
class SigningRoll:
    name: str
    old_fingerprint: str | None
    new_fingerprint: str
    pinned: str | None  # the data key's name, when it had to be written out explicitly
    ends: str
    backup: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rolled": True,
            "secret": self.name,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "data_key_pinned_as": self.pinned,
            "backup": self.backup,
            "ends": self.ends,
            "notes": list(self.notes),
        }

    def lines(self) -> list[str]:
        out = [
            f"rolled the {self.name} {self.old_fingerprint or 'unset'} -> {self.new_fingerprint}"
        ]
        if self.pinned:
            out.append(
                f"  the data key was the {self.name}'s value through the fallback: it is now "
                f"written out as {self.pinned}, so the data stay readable"
            )
        if self.backup:
            out.append(f"  backup: {self.backup}")
        out.append(f"  users: {self.ends}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


def spec_of(ctx: Context, name: str) -> SecretSpec:
    names = [s.name for s in ctx.profile.secrets]
    try:
        spec = ctx.profile.secret_spec(name)
    except KeyError:
        raise UsageError(
            f"{ctx.profile.title} has no secret {name!r}", hint=f"one of: {', '.join(names)}"
        ) from None
    return spec


def roll(ctx: Context, spec: SecretSpec) -> SigningRoll:
    """Replace ``spec``'s value; the data key stays what it is. The caller holds the lock, has
    taken a backup and recreates the services afterwards."""
    env = instance.load_env(ctx)
    data = ctx.profile.data_secret
    effective = ctx.profile.active_key(env)
    current = ctx.profile.resolve(env, spec)
    pinned = None
    if effective is not None and data.fallback == spec.name and ctx.profile.falls_back(env, data):
        if current is None or effective.key != current.key:
            raise KeyProblem(
                f"the data key resolves in a way this roll cannot pin ({effective.source})",
                hint="set the data key explicitly in the settings file, then roll again",
            )
        pinned = data.env_keys[0]
    new = ctx.profile.new_key(spec)
    ctx.redactor.add(new)
    keyring = Keyring(ctx)
    if current is not None:
        keyring.remember(current.key, status="retired", source=f"{spec.name} before roll")
    if pinned is not None and effective is not None:
        env.set(pinned, effective.key)
    if current is not None:
        env.set(spec.keep_as.format(ms=ctx.now_ms()), current.key)
    env.set(spec.env_keys[0], new)
    env.save(checkpoint="roll-secret:env")
    return SigningRoll(
        spec.name,
        current.key.fingerprint if current else None,
        new.fingerprint,
        pinned,
        spec.rolling_ends,
    )
