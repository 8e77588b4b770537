"""``upgrade`` and ``resume``: guard clauses, then one journaled driver that survives being killed.

The driver walks fixed phases and records each in the journal when it is done, so running it again
on the same journal (``resume``) skips what is finished. A step's changes commit together with the
tool's version record (and the list of applied steps) inside the database, so a step that committed
before a crash is never run twice. Any failure after the pre-upgrade backup reverts the instance
to exactly what it was (``coolify_migrate.engine.revert``), runs the on-failure hooks and exits 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from coolify_migrate import backups, instance
from coolify_migrate.backups import BackupInfo
from coolify_migrate.config import signing
from coolify_migrate.config.manifest import Manifest
from coolify_migrate.core import interrupts
from coolify_migrate.core.app import Profile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import ChangeFailed, MigrateError, Refused, UsageError
from coolify_migrate.core.release import Release
from coolify_migrate.core.versions import parse_version
from coolify_migrate.engine import hooks, preconditions, revert
from coolify_migrate.engine.plan import Plan, PlannedStep, make_plan
from coolify_migrate.engine.steps import StepContext, applied_steps, load, record_for
from coolify_migrate.secrets import host_key, verdicts
from coolify_migrate.state import journal, lock, proven
from coolify_migrate.state import made as backup_order
from coolify_migrate.state.runlog import logged

DEFAULT_MANIFEST = str(Path(__file__).resolve().parents[3] / "versions.json")  # a checkout


def default_manifest(profile: Profile | None = None) -> str:
    """The app's own packaged versions.json; for Coolify v3 the repo's when run from a
    checkout, else the packaged copy."""
    own = profile.default_manifest() if profile is not None else None
    if own is not None:
        return str(own)
    packaged = Path(__file__).resolve().parent.parent / "data" / "versions.json"
    return DEFAULT_MANIFEST if Path(DEFAULT_MANIFEST).exists() else str(packaged)


@dataclass
class Prepared:
    plan: Plan
    manifest: Manifest
    verified: bool


def target_version(to: str | None) -> Version | None:
    """``--to``: a version, ``latest`` or absent (the manifest's latest); an empty one is a
    usage error, never read as 'latest'."""
    if to is None or to == "latest":
        return None
    if not to.strip():
        raise UsageError("--to is empty", hint="give a version like 3.12.36, or 'latest'")
    return parse_version(to, what="--to")


def load_manifest(
    ctx: Context, manifest_src: str | None, trusted_key: Path | None
) -> tuple[Manifest, bool]:
    """Read and check the manifest (bounded, signature, profile's facts): before the lock, so
    an endless or hostile one is refused without ever holding it."""
    return signing.load_verified(
        ctx, manifest_src or default_manifest(ctx.profile), ctx.profile, trusted_key=trusted_key
    )


def prepare_plan(
    ctx: Context,
    *,
    to: str | None,
    manifest_src: str | None,
    trusted_key: Path | None,
    loaded: tuple[Manifest, bool] | None = None,
) -> Prepared:
    """Everything ``plan`` needs; reads only."""
    target = target_version(to)
    man, verified = loaded or load_manifest(ctx, manifest_src, trusted_key)
    env = instance.load_env(ctx)
    meta = instance.read_meta(ctx)
    installed = instance.installed_version(ctx, env, meta).require()
    registry = load(ctx.profile.name, ctx.profile.steps())
    plan = make_plan(
        installed,
        target,
        man,
        registry.steps(),
        majors_are_apps=ctx.profile.majors_are_apps,
    )
    return Prepared(plan, man, verified)


def plan(
    ctx: Context,
    *,
    to: str | None = None,
    manifest_src: str | None = None,
    trusted_key: Path | None = None,
) -> Plan:
    return prepare_plan(ctx, to=to, manifest_src=manifest_src, trusted_key=trusted_key).plan


def upgrade(
    ctx: Context,
    *,
    to: str | None = None,
    manifest_src: str | None = None,
    trusted_key: Path | None = None,
    hook_timeout: float = hooks.DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    target_version(to)  # a bad --to and the manifest are refused before the lock is taken
    loaded = load_manifest(ctx, manifest_src, trusted_key)
    started_ms = ctx.now_ms()
    with logged(ctx, "upgrade") as log, lock.acquire(ctx, "upgrade"):
        running = journal.current(ctx)
        if running is not None:
            raise Refused(
                f"an interrupted {running['kind']} run ({running['run_id']}) stopped at '{running['phase']}'",
                hint="run 'coolify-migrate resume' to finish it, or 'rollback --last' to revert it",
            )
        prep = prepare_plan(
            ctx, to=to, manifest_src=manifest_src, trusted_key=trusted_key, loaded=loaded
        )
        p = prep.plan
        if p.is_noop:
            ctx.out.info(f"already at {p.installed}: nothing to do")
            return {
                "outcome": "noop",
                "version": str(p.installed),
                "log": str(log.path),
                "elapsed_s": (ctx.now_ms() - started_ms) / 1000,
                "downtime_s": 0.0,
            }
        store = ctx.store()
        env = instance.load_env(ctx)
        live = None
        if store.exists():
            preconditions.check_database(ctx, store)
            conn = store.connect(readonly=True)
            try:
                live = verdicts.live_key(ctx, conn, env)  # refuses (exit 3) on an ambiguous key
            finally:
                conn.close()
            preconditions.check_change(ctx, store, live.key, live.source)
        runtime = ctx.runtime()
        runtime.check()
        image = runtime.ensure_images(p.target)  # before anything is stopped
        for line in p.lines():
            ctx.out.info(line)
        ids = [s.step.id for s in p.steps]
        prechecks = {s.step.id: s.step.precheck(ctx, ids) for s in p.steps if s.step.precheck}
        if ctx.runtime_name != "none":
            ctx.agree(
                f"upgrade to {p.target.version}? {ctx.profile.title} is stopped during the "
                "upgrade (and a weak data key rolled on the way logs every user out)",
                what="the upgrade did not start",
            )
        checked = backups.check_before_stop(ctx)  # the app still runs: off the downtime
        doc = journal.begin(
            ctx,
            "upgrade",
            from_version=str(p.installed),
            to_version=str(p.target.version),
            target=p.target.as_dict(),
            image=image,
            stops=[str(s) for s in p.stops],
            steps=[{"id": s.step.id, "stop": str(s.stop)} for s in p.steps],
            manifest=prep.manifest.source,
            log=str(log.path),
            done=[],
            live_key=live.key.fingerprint if live and live.key else None,
            prechecks=prechecks,
        )
        result = _drive(ctx, doc, hook_timeout=hook_timeout, started_ms=started_ms, checked=checked)
        if prep.verified:
            signing.record_seen(ctx, prep.manifest)
        return result


def resume(ctx: Context, *, hook_timeout: float = hooks.DEFAULT_TIMEOUT) -> dict[str, Any]:
    started_ms = ctx.now_ms()
    with logged(ctx, "resume"), lock.acquire(ctx, "resume"):
        doc = journal.current(ctx)
        if doc is None:
            from coolify_migrate.secrets import roll

            recovered = roll.recover(ctx)
            if recovered is not None:
                return {"outcome": "roll-completed", **recovered.as_dict()}
            ctx.out.info("nothing to resume: no interrupted run")
            return {"outcome": "nothing-to-resume"}
        ctx.out.info(f"resuming {doc['kind']} {doc['run_id']} from '{doc['phase']}'")
        if doc["kind"] == "upgrade":
            if doc["phase"] == "rolling-back":
                return revert.revert(ctx, doc, reason=doc["data"].get("error", "interrupted"))
            return _drive(ctx, doc, hook_timeout=hook_timeout, started_ms=started_ms)
        if doc["kind"] in ("roll", "repair"):
            from coolify_migrate.secrets import roll

            recovered = roll.recover(ctx)
            journal.finish(ctx, doc, "completed by resume")
            return {"outcome": "roll-completed", **(recovered.as_dict() if recovered else {})}
        if doc["kind"] == "rollback":
            from coolify_migrate.backups import rollback

            info = backups.find(ctx, doc["data"]["backup"])
            ctx.runtime().stop()
            out = rollback.restore(ctx, info, journal_doc=doc)
            ctx.runtime().rollback_to(info.version or doc["data"].get("from_version") or "")
            journal.finish(ctx, doc, "completed by resume")
            return {"outcome": "rollback-completed", **out}
        raise Refused(
            f"unknown run kind {doc['kind']!r} in the journal", hint="inspect journal.json"
        )


class _PreChangeAbort(MigrateError):
    """Raised inside the driver for a failure before any change (restart the app, exit 3)."""

    exit_code = Refused.exit_code


def _plan_from_journal(ctx: Context, doc: dict[str, Any]) -> tuple[Release, list[PlannedStep]]:
    try:
        return _read_plan(ctx, doc)
    except (KeyError, TypeError, ValueError) as err:  # a journal edited by hand
        raise Refused(
            f"the run journal of {doc.get('run_id')} lacks or garbles {err}; nothing was changed",
            hint="'rollback --last' restores the pre-upgrade backup",
        ) from err


def _read_plan(ctx: Context, doc: dict[str, Any]) -> tuple[Release, list[PlannedStep]]:
    data = doc["data"]
    if not isinstance(data["done"], list) or not all(
        isinstance(data[k], str) for k in ("from_version", "to_version")
    ):
        raise TypeError("done, from_version or to_version")
    t = data["target"]
    release = Release(
        parse_version(t["version"]),
        t["image"],
        tuple(t["fallbacks"]),
        t["required_stop"],
        t["withdrawn"],
        t["notes"],
    )
    registry = {s.id: s for s in load(ctx.profile.name, ctx.profile.steps()).steps()}
    planned = []
    for item in data["steps"]:
        if item["id"] not in registry:
            raise Refused(
                f"the journal names step {item['id']!r}, which is not installed",
                hint="reinstall the plugin that provides it, or 'rollback --last'",
            )
        planned.append(PlannedStep(registry[item["id"]], Version(item["stop"])))
    return release, planned


def downtime_ms(doc: dict[str, Any]) -> int | None:
    """From the run's start (the app is stopped first) to the new app healthy (``runtime``),
    from the journal, so a resumed run counts the time it spent interrupted too. With
    ``--runtime none`` it is the time the app must not run: backup, steps, record, ``.env``."""
    at = {h["phase"]: h["at_ms"] for h in doc.get("history", [])}
    if "runtime" not in at or not doc.get("history"):
        return None
    return int(at["runtime"] - doc["history"][0]["at_ms"])


def _drive(
    ctx: Context,
    doc: dict[str, Any],
    *,
    hook_timeout: float,
    started_ms: int,
    checked: backups.Checked | None = None,
) -> dict[str, Any]:
    data = doc["data"]
    done: list[str] = data["done"]
    release, planned = _plan_from_journal(ctx, doc)
    runtime = ctx.runtime()
    store = ctx.store()

    def mark(phase: str, **extra: Any) -> None:
        done.append(phase)
        journal.advance(ctx, doc, phase, done=done, **extra)
        ctx.out.event("phase", phase=phase, elapsed_s=(ctx.now_ms() - started_ms) / 1000)

    def hook(phase: str) -> hooks.HookFailure | None:
        return hooks.run(
            ctx,
            phase,
            from_version=data["from_version"],
            to_version=data["to_version"],
            backup=data.get("backup_path"),
            timeout=hook_timeout,
        )

    try:
        if "stop" not in done:
            runtime.stop()
            mark("stop")
        if "backup" not in done:
            if store.exists():
                made = backups.create(
                    ctx, reason="pre-upgrade", version=data["from_version"], checked=checked
                )
                snap = revert.snapshot(ctx, doc)
                mark("backup", backup=made.name, backup_path=str(made.path), snapshot=snap)
            else:
                mark("backup", backup=None, backup_path=None, snapshot=revert.snapshot(ctx, doc))
            ctx.out.info(f"pre-upgrade backup: {data.get('backup') or 'none (no database yet)'}")
        if "pre-hooks" not in done:
            failure = hook("pre-upgrade")
            if failure:
                raise _PreChangeAbort(
                    f"pre-upgrade hook {failure.hook} {failure.reason}; nothing was changed",
                    hint="fix the hook (see the run log), then run upgrade again",
                )
            mark("pre-hooks")
    except MigrateError as err:
        _abort_before_change(ctx, doc, err)
        raise

    try:
        info: BackupInfo | None = backups.find(ctx, data["backup"]) if data.get("backup") else None
        for p in planned:
            phase = f"step:{p.step.id}"
            if phase in done:
                continue
            meta = instance.read_meta(ctx)
            sc = StepContext(ctx, p.step, record_for(meta, p.step, p.stop), info, doc)
            if p.step.id not in applied_steps(meta):
                ctx.out.info(f"step {p.step.id}: {p.step.title}")
                if p.step.source != "built-in":
                    ctx.proofs.forget()  # it may write values this run proved
                p.step.apply(sc)
            elif p.step.recover is not None:  # committed before a crash: finish what follows
                p.step.recover(sc)
            for note in sc.notes:
                ctx.out.info(f"  {note}")
            if p.step.verify is not None:
                p.step.verify(StepContext(ctx, p.step, {}, info, doc))
            mark(phase)
        if "record" not in done:
            if store.exists():
                conn = store.connect()
                try:
                    with conn.transaction("upgrade:record"):
                        conn.write_meta(version=data["to_version"])
                finally:
                    conn.close()
                proven.refresh(ctx, started_ms)  # this run's roll proved every value
            mark("record")
        if "env" not in done:
            env = instance.load_env(ctx)
            if ctx.profile.version_env_key:
                env.set(ctx.profile.version_env_key, data["to_version"])
            env.save(checkpoint="upgrade:env")
            # KEY = BETTER = the data's key before the new app ever starts (a key only the old
            # container knew is adopted here); a failed upgrade puts the .env snapshot back
            for note in host_key.settle(ctx):
                ctx.out.info(note)
            mark("env")
        if "runtime" not in done:
            ctx.out.info(f"starting {release.version} ({data['image']})")
            before = host_key.Snapshot.take(ctx) if runtime.name != "none" else None
            runtime.update(release, data["image"])
            if before is not None:  # healthy: did its start leave every value alone?
                before.check(ctx, what=f"the start of {release.version}")
            mark("runtime")
        if "post-hooks" not in done:
            failure = hook("post-upgrade")
            if failure:
                raise ChangeFailed(f"post-upgrade hook {failure.hook} {failure.reason}")
            mark("post-hooks")
    except Exception as err:
        message = err.message if isinstance(err, MigrateError) else f"{type(err).__name__}: {err}"
        with interrupts.deferred(revert.PLEASE_WAIT):
            ctx.out.warn(f"upgrade failed: {ctx.redactor.redact(message)}; rolling back")
            revert.revert(ctx, doc, reason=message)
        raise ChangeFailed(
            f"upgrade to {data['to_version']} failed ({ctx.redactor.redact(message)}); "
            f"the instance was rolled back to {data['from_version']}",
            hint=f"see the log {data.get('log')}",
        ) from err

    runtime.finish()
    journal.finish(ctx, doc, "upgraded")
    elapsed, down = (ctx.now_ms() - started_ms) / 1000, downtime_ms(doc)
    downtime = down / 1000 if down is not None else None
    ctx.out.info(f"log: {data.get('log')}")
    ctx.out.info(
        f"upgraded {data['from_version']} -> {data['to_version']} in {elapsed:.1f} s, "
        f"downtime {downtime or 0:.1f} s (app stopped -> started)"
    )
    return {
        "outcome": "upgraded",
        "from": data["from_version"],
        "to": data["to_version"],
        "backup": data.get("backup"),
        "steps": [p.step.id for p in planned],
        "log": data.get("log"),
        "elapsed_s": elapsed,
        "downtime_s": downtime,
    }


def _abort_before_change(ctx: Context, doc: dict[str, Any], err: MigrateError) -> None:
    """Nothing was changed: start the app again and close the journal."""
    try:
        ctx.runtime().start()
    except MigrateError as start_err:  # never hide the original error behind this one
        ctx.out.warn(f"could not start the app again: {start_err.message}")
    _discard_backup(ctx, doc["data"].get("backup_path"))
    journal.finish(ctx, doc, f"aborted: {err.message}")
    hooks.run(
        ctx,
        "on-failure",
        from_version=doc["data"]["from_version"],
        to_version=doc["data"]["to_version"],
        backup=None,
    )


def _discard_backup(ctx: Context, path: str | None) -> None:
    """The pre-upgrade backup of a run that changed nothing is this run's own litter: removed
    (with its manifest and kept files), so "nothing was changed" is true of the directory too."""
    if not path:
        return
    made = Path(path)
    for leftover in (made, *made.parent.glob(f"{made.name}.*")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError as err:
            ctx.out.warn(f"could not remove this run's backup {leftover.name}: {err.strerror}")
    backup_order.forget(ctx, [made.name])
