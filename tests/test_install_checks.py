"""scripts/install.sh's checks, each in a sandbox where it fails, with no Docker engine needed.

Every check must print one clear line, exit 3 ("refused before any change") and create nothing:
no install directory, no virtualenv. The sandboxes are real: a fake ``docker`` script on PATH
(old version, no engine, swarm manager), an unprivileged user (setpriv), a 1 MiB tmpfs, ``sh``
instead of bash. Coolify v3's flags (``-v``, ``-x``, ``-n -a -w -i``): a version is checked
before anything is touched, with the tool already installed (a virtualenv whose
``coolify-migrate`` runs this checkout) or built in a temporary directory. Also here: the .env
preparation install.sh asks of the library, with the settings those flags write.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem, UsageError
from coolify_migrate.engine.install_env import prepare_env
from support import REPO, LeakGuard

INSTALL = REPO / "scripts" / "install.sh"


def fake_docker(
    bin_dir: Path, *, version: str = "24.0.7", swarm: str = "false", answers: bool = True
) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    body = (
        "exit 1"
        if not answers
        else (f'case "$1" in version) echo {version} ;; info) echo {swarm} ;; *) exit 1 ;; esac')
    )
    script = bin_dir / "docker"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def run(
    args: list[str],
    *,
    path: str | None = None,
    env: dict[str, str] | None = None,
    shell: str = "bash",
    user: int | None = None,
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    full.update(
        {
            "PATH": path or os.environ["PATH"],
            "COOLIFY_MIGRATE_MIN_FREE_MB": "1",
            "COOLIFY_MIGRATE_PYTHON": "/usr/bin/python3"
            if Path("/usr/bin/python3").exists()
            else shutil.which("python3") or "python3",
            **(env or {}),
        }
    )
    cmd = [shell, str(INSTALL), *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=full, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def path_without_docker(root: Path) -> str:
    """A PATH holding every tool of /usr/bin and /bin except docker (which this host has)."""
    tools = root / "tools"
    tools.mkdir()
    for folder in ("/usr/bin", "/bin"):
        for entry in os.scandir(folder):
            if not entry.name.startswith("docker") and not (tools / entry.name).exists():
                (tools / entry.name).symlink_to(entry.path)
    return str(tools)


def refused(proc: subprocess.CompletedProcess[str], words: str, *created: Path) -> None:
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "(hint: " in lines[0], proc.stderr
    assert words in lines[0], lines[0]
    for path in created:
        assert not path.exists(), f"{path} was created by a refused run"


def test_bash_is_required(sandbox: Path) -> None:
    d = sandbox / "coolify"
    proc = run(["-f", "--dir", str(d)], shell="sh")
    refused(proc, "must run under bash", d)


def test_help_and_unknown_flags(sandbox: Path) -> None:
    ok = run(["-h"])
    assert ok.returncode == 0 and "--manifest" in ok.stdout and "--install-docker" in ok.stdout
    bad = run(["--frobnicate"])
    assert bad.returncode == 2 and "unknown option '--frobnicate'" in bad.stderr
    missing = run(["-x"])
    assert missing.returncode == 2 and "-x needs a value" in missing.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_not_root_and_dir_not_writable(sandbox: Path) -> None:
    # The script must be readable by the unprivileged user: copy it out of the checkout's tmp.
    shared = Path(tempfile.mkdtemp(prefix="cm-install-"))
    try:
        shared.chmod(0o755)
        script = shared / "install.sh"
        shutil.copy(INSTALL, script)
        script.chmod(0o755)
        locked = shared / "root-only"
        locked.mkdir(mode=0o755)
        target = locked / "coolify"
        full = {**os.environ, "COOLIFY_MIGRATE_MIN_FREE_MB": "1", "HOME": str(shared)}
        proc = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "bash",
                str(script),
                "-f",
                "--dir",
                str(target),
            ],
            capture_output=True,
            text=True,
            env=full,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        refused(proc, "not running as root", target)
        assert sorted(p.name for p in locked.iterdir()) == []
    finally:
        shutil.rmtree(shared)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_free_disk(tiny_disk: Path, sandbox: Path) -> None:
    fake_docker(sandbox / "bin")
    d = tiny_disk / "coolify"
    proc = run(
        ["-f", "--dir", str(d)],
        path=f"{sandbox / 'bin'}:/usr/bin:/bin",
        env={"COOLIFY_MIGRATE_MIN_FREE_MB": "2048"},
    )
    refused(proc, "MiB free for", d)
    assert list(tiny_disk.iterdir()) == []


def test_python_with_venv(sandbox: Path) -> None:
    fake_docker(sandbox / "bin")
    old = sandbox / "bin" / "python-old"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    d = sandbox / "coolify"
    proc = run(["-f", "--dir", str(d)], env={"COOLIFY_MIGRATE_PYTHON": str(old)})
    refused(proc, "older than 3.11 or lacks the venv module", d)
    gone = run(["-f", "--dir", str(d)], env={"COOLIFY_MIGRATE_PYTHON": str(sandbox / "nope")})
    refused(gone, "not found", d)


def test_docker_missing_says_how_to_install_it(sandbox: Path) -> None:
    d = sandbox / "coolify"
    proc = run(["-f", "--dir", str(d)], path=path_without_docker(sandbox))
    refused(proc, "Docker is not installed", d)
    assert "apt-get install docker.io" in proc.stderr and "--install-docker" in proc.stderr


def test_install_docker_installs_the_package_only_when_asked(sandbox: Path) -> None:
    bin_dir = sandbox / "bin"
    bin_dir.mkdir()
    calls = sandbox / "apt-calls"
    # A fake apt-get: records its arguments and "installs" a docker that is too old, so the run
    # still stops at the next check and creates nothing of its own.
    apt = bin_dir / "apt-get"
    apt.write_text(
        f'#!/bin/sh\necho "$*" >>{calls}\n'
        f"case \"$*\" in *docker.io*) printf '#!/bin/sh\\necho 19.03.0\\n' >{bin_dir}/docker;"
        f" chmod +x {bin_dir}/docker ;; esac\n"
    )
    apt.chmod(0o755)
    d = sandbox / "coolify"
    path = f"{bin_dir}:{path_without_docker(sandbox)}"
    without = run(["-f", "--dir", str(d)], path=path)
    refused(without, "Docker is not installed", d)
    assert not calls.exists()
    proc = run(["-f", "--dir", str(d), "--install-docker"], path=path)
    assert "install -y -qq docker.io" in calls.read_text()
    assert proc.returncode == 3 and "Docker 19.03.0 is too old" in proc.stderr
    assert not d.exists()


@pytest.mark.parametrize("version", ["19.03.0", "20.9.1", "1.13.1"])
def test_docker_older_than_20_10(sandbox: Path, version: str) -> None:
    fake_docker(sandbox / "bin", version=version)
    d = sandbox / "coolify"
    proc = run(["-f", "--dir", str(d)], path=f"{sandbox / 'bin'}:/usr/bin:/bin")
    refused(proc, f"Docker {version} is too old: 20.10 or newer is needed", d)


def test_docker_engine_not_answering(sandbox: Path) -> None:
    fake_docker(sandbox / "bin", answers=False)
    d = sandbox / "coolify"
    proc = run(["-f", "--dir", str(d)], path=f"{sandbox / 'bin'}:/usr/bin:/bin")
    refused(proc, "the Docker engine does not answer", d)


def test_swarm_manager(sandbox: Path) -> None:
    fake_docker(sandbox / "bin", version="20.10.24+dfsg1", swarm="true")
    d = sandbox / "coolify"
    proc = run(["-f", "--dir", str(d)], path=f"{sandbox / 'bin'}:/usr/bin:/bin")
    refused(proc, "Docker Swarm manager", d)


def test_every_check_passing_but_no_terminal_and_no_force_asks_nothing(sandbox: Path) -> None:
    fake_docker(sandbox / "bin", version="20.10.24+dfsg1")
    d = sandbox / "coolify"
    proc = run(["--dir", str(d)], path=f"{sandbox / 'bin'}:/usr/bin:/bin")
    refused(proc, "no terminal to ask on", d, d / ".venv-coolify-migrate")
    restart = run(["-r", "--dir", str(d)], path=f"{sandbox / 'bin'}:/usr/bin:/bin")
    refused(restart, "coolify-migrate is not installed", d)


def test_install_sh_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    proc = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


# -- the .env preparation (install.sh runs it through `coolify-migrate prepare-env`) ----------


def test_fresh_env_gets_strong_secrets_and_the_target_tag(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "coolify")
    result = prepare_env(ctx, version="v3.12.36")
    env = EnvFile.load(ctx.env_path)
    key = env.get("COOLIFY_SECRET_KEY")
    assert key
    leak_guard.register(key)
    assert result["created"] and env.get("TAG") == "3.12.36"
    assert len(key) == 32 and env.get("COOLIFY_SECRET_KEY_BETTER") == key
    assert stat.S_IMODE(ctx.env_path.stat().st_mode) == 0o600
    again = prepare_env(ctx, version="3.12.36")
    assert again == {**again, "created": False, "added": [], "backup": None}
    assert EnvFile.load(ctx.env_path).get("COOLIFY_SECRET_KEY") == key


def test_existing_env_keeps_every_populated_key_and_backs_up_before_adding(
    demo: object, tmp_path: Path
) -> None:
    data_dir = demo.data_dir  # type: ignore[attr-defined]
    env_path = data_dir / ".env"
    env_path.write_text(
        env_path.read_text()
        .replace("COOLIFY_AUTO_UPDATE=false\n", "")
        .replace("COOLIFY_APP_ID=", "COOLIFY_APP_ID=keep-me-")
    )
    before = env_path.read_bytes()
    result = prepare_env(Context(profile=CoolifyV3(), data_dir=data_dir), version="3.12.36")
    after = EnvFile.load(env_path)
    # BETTER is missing, but the data key exists: only the upgrade's roll may add it
    assert result["added"] == ["COOLIFY_AUTO_UPDATE"]
    assert after.get("COOLIFY_SECRET_KEY_BETTER") is None
    assert after.get(
        "COOLIFY_APP_ID",
    ).startswith("keep-me-")  # type: ignore[union-attr]
    assert after.get("TAG") == "3.12.32"  # the installed version: upgrade moves it
    backup = Path(result["backup"])
    assert backup.name.startswith(".env-") and backup.read_bytes() == before
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_a_database_without_its_env_is_refused(demo: object) -> None:
    data_dir = demo.data_dir  # type: ignore[attr-defined]
    (data_dir / ".env").unlink()
    with pytest.raises(KeyProblem, match=r"no .*\.env: new secrets would not decrypt them"):
        prepare_env(Context(profile=CoolifyV3(), data_dir=data_dir), version="3.12.36")
    assert not (data_dir / ".env").exists()


# -- Coolify v3's flags --------------------------------------------------------------------------


def pyproject_version() -> str:
    found = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert found
    return found.group(1)


def tool_venv(root: Path) -> Path:
    """A virtualenv holding this checkout's tool at this version: install.sh keeps it (its
    ``coolify-migrate --version`` is install.sh's), so no pip runs."""
    venv = root / "tool-venv"
    (venv / "bin").mkdir(parents=True)
    tool = venv / "bin" / "coolify-migrate"
    tool.write_text(
        f'#!/bin/sh\nPYTHONPATH={REPO / "installer"} exec {sys.executable} -m coolify_migrate "$@"\n'
    )
    tool.chmod(0o755)
    (venv / "bin" / "python").symlink_to(sys.executable)
    return venv


def nothing_created(*paths: Path) -> None:
    for path in paths:
        assert not path.exists(), f"{path} was created by a refused run"


def test_v_prints_the_scripts_version_and_touches_nothing(sandbox: Path) -> None:
    d = sandbox / "coolify"
    expected = f"coolify-migrate install.sh {pyproject_version()}\n"
    for args in (["-v"], ["--version"], ["-f", "--dir", str(d), "-v"]):
        proc = run(args)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected, ""), args
    nothing_created(d)


@pytest.mark.parametrize("bad", ["foo", "3.12.35;id", "latest-ish", "v", "3..12"])
def test_a_malformed_version_is_a_usage_error_before_anything(sandbox: Path, bad: str) -> None:
    fake_docker(sandbox / "bin")
    d = sandbox / "coolify"
    proc = run(["-f", "-x", bad, "--dir", str(d)], path=f"{sandbox / 'bin'}:/usr/bin:/bin")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"-x '{bad}' is not a version" in proc.stderr
    nothing_created(d)


def test_a_version_that_is_no_release_is_refused_before_anything(sandbox: Path) -> None:
    fake_docker(sandbox / "bin")
    venv = tool_venv(sandbox)
    d = sandbox / "coolify"
    for bad, why in (("9.9.9", "9.9.9 is not a release"), ("3.12.34", "3.12.34 was withdrawn")):
        proc = run(
            ["-f", "-x", bad, "--dir", str(d), "--venv", str(venv)],
            path=f"{sandbox / 'bin'}:/usr/bin:/bin",
        )
        refused(proc, why, d)
    assert (
        "pick one of: 3.12.30, "
        in run(
            ["-f", "-x", "v9.9", "--dir", str(d), "--venv", str(venv)],
            path=f"{sandbox / 'bin'}:/usr/bin:/bin",
        ).stderr
    )


@pytest.mark.slow
def test_a_new_tool_is_staged_and_a_bad_version_leaves_no_venv(sandbox: Path) -> None:
    """No tool installed yet: it is built in a temporary directory, asked, and thrown away."""
    fake_docker(sandbox / "bin")
    d, tmp = sandbox / "coolify", sandbox / "tmp"
    tmp.mkdir()
    proc = run(
        ["-f", "-x", "3.99.0", "--dir", str(d)],
        path=f"{sandbox / 'bin'}:/usr/bin:/bin",
        env={"TMPDIR": str(tmp)},
    )
    assert proc.returncode == 3, proc.stderr
    assert "3.99.0 is not a release" in proc.stderr
    assert "building coolify-migrate" in proc.stdout
    nothing_created(d, d / ".venv-coolify-migrate")
    assert list(tmp.iterdir()) == []  # the staged tool is gone too


@pytest.mark.parametrize(
    ("args", "target"),
    [
        ([], "3.12.36"),
        (["-x", "latest"], "3.12.36"),
        (["-x", "3.12.35"], "3.12.35"),
        (["-x", "v3.12.35"], "3.12.35"),
        (["--force-version=3.12.33"], "3.12.33"),
        (["--version", "3.12.35"], "3.12.35"),  # this script's older spelling of -x
    ],
)
def test_the_target_is_resolved_then_logged_and_the_tool_kept(
    sandbox: Path, args: list[str], target: str
) -> None:
    # Docker "answers" the checks, but the engine's socket is not there: the run stops at the
    # first command that needs it, after the target is chosen and the log begun.
    fake_docker(sandbox / "bin")
    venv = tool_venv(sandbox)
    d = sandbox / "coolify"
    proc = run(
        ["-f", *args, "--dir", str(d), "--venv", str(venv)],
        path=f"{sandbox / 'bin'}:/usr/bin:/bin",
        env={"DOCKER_HOST": f"unix://{sandbox}/no-engine.sock"},
    )
    assert f"target version: {target}\n" in proc.stdout, proc.stderr
    assert "already in" in proc.stdout and "installing" not in proc.stdout  # no pip run
    assert proc.returncode == 3 and "cannot reach the Docker engine" in proc.stderr
    (log,) = (d / ".coolify-migrate").glob("install-*.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert f"Coolify {target} in {d}" in text and "cannot reach the Docker engine" in text


def test_v3_settings_are_checked_before_anything(sandbox: Path) -> None:
    d = sandbox / "redash"
    redash = run(["-f", "--app", "redash", "-a", "--dir", str(d)])
    assert redash.returncode == 2 and "-a is a Coolify v3 setting" in redash.stderr
    logo = run(["-f", "-i", "logo.png", "--dir", str(d)])
    assert logo.returncode == 2 and "-i takes an http(s) URL" in logo.stderr
    missing = run(["-i"])
    assert missing.returncode == 2 and "-i needs a value" in missing.stderr
    nothing_created(d)


def test_outside_a_checkout_no_package_name_is_guessed(sandbox: Path) -> None:
    alone = sandbox / "download"
    alone.mkdir()
    shutil.copy(INSTALL, alone / "install.sh")
    fake_docker(sandbox / "bin")
    d = sandbox / "coolify"
    full = {k: v for k, v in os.environ.items() if k != "COOLIFY_MIGRATE_PIP_SPEC"}
    full |= {"PATH": f"{sandbox / 'bin'}:/usr/bin:/bin", "COOLIFY_MIGRATE_MIN_FREE_MB": "1"}
    proc = subprocess.run(
        ["bash", str(alone / "install.sh"), "-f", "--dir", str(d)],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    refused(proc, "outside a coolify-migrate checkout and COOLIFY_MIGRATE_PIP_SPEC is unset", d)


def test_the_script_version_is_the_tools() -> None:
    from coolify_migrate import __version__

    assert __version__ == pyproject_version()
    assert f"readonly INSTALLER_VERSION={__version__}\n" in INSTALL.read_text()


V3_FLAGS = {  # -n, -a, -i URL (which implies -w), as install.sh passes them
    "COOLIFY_APP_ID": "",
    "COOLIFY_AUTO_UPDATE": "true",
    "COOLIFY_WHITE_LABELED_ICON": "https://example.com/logo.png",
    "COOLIFY_WHITE_LABELED": "true",
}


def test_v3_flags_on_a_fresh_env_and_kept_by_a_plain_rerun(
    tmp_path: Path, leak_guard: LeakGuard
) -> None:
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "coolify")
    prepare_env(ctx, version="3.12.36", settings=V3_FLAGS)
    env = EnvFile.load(ctx.env_path)
    key = env.get("COOLIFY_SECRET_KEY")
    assert key and len(key) == 32 and env.get("COOLIFY_SECRET_KEY_BETTER") == key
    leak_guard.register(key)
    assert {k: env.get(k) for k in V3_FLAGS} == V3_FLAGS
    # Run again without the flags: an empty COOLIFY_APP_ID is "do not track", not a gap to fill
    before = ctx.env_path.read_bytes()
    again = prepare_env(ctx, version="3.12.36")
    assert (again["added"], again["changed"], again["backup"]) == ([], [], None)
    assert ctx.env_path.read_bytes() == before


def test_v3_flags_on_an_existing_env_change_settings_never_secrets(demo: object) -> None:
    data_dir = demo.data_dir  # type: ignore[attr-defined]
    env_path = data_dir / ".env"
    before = EnvFile.load(env_path)
    old_bytes = env_path.read_bytes()
    result = prepare_env(
        Context(profile=CoolifyV3(), data_dir=data_dir), version="3.12.36", settings=V3_FLAGS
    )
    after = EnvFile.load(env_path)
    assert {k: after.get(k) for k in V3_FLAGS} == V3_FLAGS
    assert set(result["changed"]) | set(result["added"]) >= {
        "COOLIFY_APP_ID",
        "COOLIFY_AUTO_UPDATE",
    }
    for name in ("COOLIFY_SECRET_KEY", "TAG", "COOLIFY_DATABASE_URL"):
        assert after.get(name) == before.get(name)
    assert Path(result["backup"]).read_bytes() == old_bytes


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("COOLIFY_SECRET_KEY", "managed by the tool"),
        ("COOLIFY_SECRET_KEY_BETTER", "managed by the tool"),
        ("COOLIFY_SECRET_KEY_OLD_1689674942980", "managed by the tool"),
        ("TAG", "managed by the tool"),
        ("PATH", "is not one of Coolify v3's settings"),
    ],
)
def test_a_setting_never_names_a_secret_nor_the_version(tmp_path: Path, key: str, why: str) -> None:
    ctx = Context(profile=CoolifyV3(), data_dir=tmp_path / "coolify")
    with pytest.raises(UsageError, match=why):
        prepare_env(ctx, version="3.12.36", settings={key: "x" * 32})
    nothing_created(ctx.data_dir)


def test_prepare_env_takes_the_settings_install_sh_passes(tmp_path: Path, cli: Any) -> None:
    d = tmp_path / "coolify"
    flags = [f"--set={k}={v}" for k, v in V3_FLAGS.items()]
    proc = cli("prepare-env", "--data-dir", str(d), "--version", "3.12.36", *flags)
    assert proc.returncode == 0, proc.stderr
    env = EnvFile.load(d / ".env")
    assert {k: env.get(k) for k in V3_FLAGS} == V3_FLAGS
    bad = cli("prepare-env", "--data-dir", str(d), "--version", "3.12.36", "--set", "NOPE")
    assert bad.returncode == 2 and "is not KEY=VALUE" in bad.stderr
    secret = cli(
        "prepare-env",
        "--data-dir",
        str(d),
        "--version",
        "3.12.36",
        "--set",
        "COOLIFY_SECRET_KEY=" + "a" * 32,
    )
    assert secret.returncode == 2 and "managed by the tool" in secret.stderr
