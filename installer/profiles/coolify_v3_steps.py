"""Coolify v3's migration steps.

- ``roll-date-seeded-key`` (3.12.33): what v3's own 3.12.33 did on container start, done safely
  (one verified transaction, key kept on the host, version recorded with it).
- ``roll-weak-key`` (every upgrade): rolls the key when audit *proves* it date-seeded, for instances
  that passed 3.12.33 with the weak key still in place (e.g. after the v3 recovery recipe).
"""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from installer import instance, keys
from installer.context import Context
from installer.engine.steps import Step, StepContext
from installer.errors import ChangeFailed


def _roll_date_seeded(sc: StepContext) -> None:
    from installer import roll

    result = roll.roll(
        sc.ctx, force=True, backup=sc.backup, meta_extra=sc.record, journal_doc=sc.journal_doc
    )
    sc.notes.extend(result.lines())


def _prove_weak(ctx: Context, planned: list[str]) -> dict[str, Any]:
    """Run before the app stops: the audit's search can take a minute on a legacy-form key."""
    from installer import audit, roll

    if "roll-date-seeded-key" in planned or not roll.needs_roll(ctx):
        return {}  # rolled anyway, or strong: nothing to prove
    report = audit.audit(ctx)
    return {"proven": bool(report.proven), "seed_ms": report.seed_ms}


def _roll_if_weak(sc: StepContext) -> None:
    from installer import audit, roll

    if roll.needs_roll(sc.ctx):
        proven = sc.journal_doc["data"].get("prechecks", {}).get("roll-weak-key", {}).get("proven")
        if proven is None:
            proven = bool(audit.audit(sc.ctx).proven)
        if proven:
            result = roll.roll(
                sc.ctx,
                force=True,
                backup=sc.backup,
                meta_extra=sc.record,
                journal_doc=sc.journal_doc,
            )
            sc.notes.extend(result.lines())
            return
        sc.notes.append("the key has the legacy form but is not proven date-seeded: kept")
    else:
        sc.notes.append("the key is strong: nothing to roll")
    with sc.transaction():
        pass  # commits the version record for this step


def _finish_roll(sc: StepContext) -> None:
    from installer import roll

    result = roll.recover(sc.ctx)
    if result is not None:
        sc.notes.append(f"completed the interrupted key roll to {result.new_fingerprint}")


def _verify_every_value(sc: StepContext) -> None:
    env = instance.load_env(sc.ctx)
    active = sc.ctx.profile.active_key(env)
    if active is None:
        raise ChangeFailed("no data key in .env after the step")
    failed = keys.undecryptable(sc.ctx, sc.db_path, active.key)
    if failed:
        raise ChangeFailed(
            f"{failed} encrypted values do not decrypt under the active key after the step"
        )


def steps() -> list[Step]:
    return [
        Step(
            "roll-date-seeded-key",
            "roll the date-seeded secret key in one verified transaction",
            _roll_date_seeded,
            Version("3.12.33"),
            verify=_verify_every_value,
            recover=_finish_roll,
        ),
        Step(
            "roll-weak-key",
            "roll the key if audit proves it date-seeded",
            _roll_if_weak,
            None,
            verify=_verify_every_value,
            recover=_finish_roll,
            precheck=_prove_weak,
            when="changes something only if audit proves the key weak",
        ),
    ]
