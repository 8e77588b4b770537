"""scripts/install.sh's checks, each in a sandbox where it fails, with no Docker engine needed.

Every check must print one clear line, exit 3 ("refused before any change") and create nothing:
no install directory, no virtualenv. The sandboxes are real: a fake ``docker`` script on PATH
(old version, no engine, swarm manager), an unprivileged user (setpriv), a 1 MiB tmpfs, ``sh``
instead of bash. Also here: the .env preparation install.sh asks of the library.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from coolify_migrate.apps.coolify_v3.profile import CoolifyV3
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.context import Context
from coolify_migrate.core.errors import KeyProblem
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
