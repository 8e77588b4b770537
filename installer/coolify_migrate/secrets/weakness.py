"""Whether the data key should be rolled: weak on its face, proven date-seeded, shared with
another secret, or the values spread over several keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from coolify_migrate import instance
from coolify_migrate.core.context import Context
from coolify_migrate.core.store import Connection
from coolify_migrate.secrets import audit
from coolify_migrate.secrets.key_form import key_form
from coolify_migrate.secrets.keys import Analysis


def needs_roll(ctx: Context) -> bool:
    """Cheap: the .env key fails the face checks or has the date-seeded form. No search."""
    active = ctx.profile.active_key(instance.load_env(ctx))
    if active is None:
        return False
    form = key_form(active.key, ctx.profile)
    return bool(form.reasons) or form.date_seeded_form


@dataclass
class Need:
    """Why the data should be rolled (empty: they should not), and the seed times proven."""

    reasons: list[str] = field(default_factory=list)
    seeds: dict[str, int] = field(default_factory=dict)  # key fingerprint -> seed ms

    def __bool__(self) -> bool:
        return bool(self.reasons)


def weakness(
    ctx: Context,
    analysis: Analysis,
    *,
    conn: Connection | None,
    search: bool = True,
) -> Need:
    """Why the data should be rolled: a key holding values is weak (its face, or proven
    date-seeded when ``search``; only its form when not), or the values are under several keys."""
    held = {fp: n for fp, n in analysis.under().items() if n}
    need = Need()
    if len(held) > 1:
        need.reasons.append(
            f"the values are under {len(held)} keys ("
            + ", ".join(f"{fp}: {n}" for fp, n in held.items())
            + "): a roll puts them all under one"
        )
    judged = [c for c in analysis.keys if c.key.fingerprint in held] or (
        [analysis.primary] if analysis.primary is not None else []
    )
    env = instance.load_env(ctx)
    for cand in judged:
        prefix = f"{cand.key.fingerprint}: " if len(judged) > 1 else ""
        shared = audit.shared_with(ctx, env, cand)
        if shared:
            need.reasons.append(prefix + shared)
        if search:
            report = audit.assess(ctx, cand, conn=conn)
            need.reasons.extend(prefix + r for r in report.reasons)
            if report.seed_ms is not None:
                need.seeds[cand.key.fingerprint] = report.seed_ms
        else:
            form = key_form(cand.key, ctx.profile)
            need.reasons.extend(prefix + r for r in form.reasons)
            if form.date_seeded_form:
                need.reasons.append(
                    prefix + "the key has the date-seeded form of the old installers"
                )
    return need
