"""plan, upgrade, resume, and the maintainer's manifest signing commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coolify_migrate.cli import app
from coolify_migrate.cli.common import (
    DataDirOpt,
    DbOpt,
    DebugOpt,
    JsonOpt,
    KeyFileOpt,
    RuntimeName,
    RuntimeOpt,
    YesOpt,
    emit,
    make_ctx,
    positive_seconds,
)
from coolify_migrate.engine import hooks

ToOpt = Annotated[
    str | None, typer.Option("--to", help="Target version [default: the manifest's latest]")
]
ManifestOpt = Annotated[
    str | None,
    typer.Option(
        "--manifest", help="versions.json: a path or an http(s) URL [default: the bundled one]"
    ),
]
TrustedKeyOpt = Annotated[
    Path | None,
    typer.Option("--trusted-key", help="Ed25519 public key (PEM) the manifest must be signed with"),
]
HookTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--hook-timeout", help="Seconds each hook may run (above 0)", callback=positive_seconds
    ),
]

manifest_app = typer.Typer(help="Maintainer tools: sign versions.json.", no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")


@app.command("plan")
def plan_cmd(
    to: ToOpt = None,
    manifest: ManifestOpt = None,
    trusted_key: TrustedKeyOpt = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show the steps and required stops an upgrade would run. Changes nothing."""
    from coolify_migrate.engine import upgrade

    ctx = make_ctx(data_dir=data_dir, db=db, json_mode=json, runtime=runtime, key_file=key_file)
    p = upgrade.plan(ctx, to=to, manifest_src=manifest, trusted_key=trusted_key)
    emit(json, p.as_dict(), p.lines())


@app.command("upgrade")
def upgrade_cmd(
    to: ToOpt = None,
    manifest: ManifestOpt = None,
    trusted_key: TrustedKeyOpt = None,
    hook_timeout: HookTimeoutOpt = hooks.DEFAULT_TIMEOUT,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    yes: YesOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Back up, run the migration steps through every required stop, switch the app; roll back on failure."""
    from coolify_migrate.engine import upgrade

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        yes=yes,
        runtime=runtime,
        key_file=key_file,
        events=True,
    )
    result = upgrade.upgrade(
        ctx, to=to, manifest_src=manifest, trusted_key=trusted_key, hook_timeout=hook_timeout
    )
    emit(
        json,
        result,
        # an upgrade's last line is the engine's: the versions, total time and downtime
        [f"log: {result['log']}"] if result.get("log") and result["outcome"] != "upgraded" else [],
    )


@app.command("resume")
def resume_cmd(
    hook_timeout: HookTimeoutOpt = hooks.DEFAULT_TIMEOUT,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    runtime: RuntimeOpt = RuntimeName.auto,
    key_file: KeyFileOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Finish (or finish reverting) a run that was interrupted."""
    from coolify_migrate.engine import upgrade

    ctx = make_ctx(
        changes=True,
        data_dir=data_dir,
        db=db,
        json_mode=json,
        runtime=runtime,
        key_file=key_file,
        events=True,
    )
    result = upgrade.resume(ctx, hook_timeout=hook_timeout)
    # a finished upgrade's last line is the engine's: the versions, total time and downtime
    done = result.get("outcome") == "upgraded"
    emit(json, result, [] if done else [f"resume: {result.get('outcome')}"])


@manifest_app.command("keygen")
def keygen_cmd(
    private_key: Annotated[
        Path, typer.Argument(help="Where to write the Ed25519 private key (0600)")
    ],
    public_key: Annotated[
        Path, typer.Argument(help="Where to write the public key to pin on hosts")
    ],
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Create a signing key pair for versions.json."""
    from coolify_migrate.config import signing

    signing.generate_keypair(private_key, public_key)
    emit(
        json,
        {"private_key": str(private_key), "public_key": str(public_key)},
        [f"wrote {private_key} (keep it secret) and {public_key} (pin it on hosts)"],
    )


@manifest_app.command("sign")
def sign_cmd(
    manifest: Annotated[Path, typer.Argument(help="The versions.json to sign")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM)")],
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write <manifest>.sig, a detached Ed25519 signature over the file's exact bytes."""
    from coolify_migrate.config import signing

    sig = signing.sign_file(manifest, key)
    emit(json, {"signature": str(sig)}, [f"wrote {sig}"])
