"""``--runtime auto`` chooses out loud, and never falls back to files only under a change.

The engine-side answers here come from a Unix socket this test serves (what ``/_ping`` replies);
tests/docker/test_runtime_auto.py asks the real engine the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.runtimes import choice
from support import tree_hash


@pytest.fixture
def answering(tmp_path: Path) -> Iterator[str]:
    """A Unix socket that answers ``GET /_ping`` the way an engine does (HTTP 200, body OK)."""
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def silent(tmp_path: Path) -> str:
    """A socket file nobody listens on: what a stopped daemon leaves behind."""
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    return f"unix://{path}"


def write_context(home: Path, name: str, host: str, *, current: bool = True) -> None:
    """A Docker CLI context as ``docker context create`` stores it."""
    meta = home / ".docker" / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    doc = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(doc))
    if current:
        (home / ".docker" / "config.json").write_text(json.dumps({"currentContext": name}))


def test_an_explicit_choice_says_so() -> None:
    picked = choice.choose("none", environ={})
    assert (picked.name, picked.why, picked.automatic) == ("none", "--runtime none", False)


def test_docker_host_that_answers(answering: str, tmp_path: Path) -> None:
    picked = choice.choose("auto", environ={"DOCKER_HOST": answering}, home=tmp_path)
    assert picked.name == "docker" and picked.answered is True
    assert "DOCKER_HOST" in picked.why and "answers" in picked.why


def test_docker_host_that_does_not_answer(silent: str, tmp_path: Path) -> None:
    picked = choice.choose("auto", environ={"DOCKER_HOST": silent}, home=tmp_path)
    assert picked.name == "none" and picked.engine_silent
    assert "no Docker engine answers" in picked.why and silent in picked.why


def test_the_current_docker_context(answering: str, tmp_path: Path) -> None:
    write_context(tmp_path, "rootless", answering)
    picked = choice.choose("auto", environ={}, home=tmp_path)
    assert picked.name == "docker" and picked.host == answering
    assert "the Docker context 'rootless'" in picked.why


def test_docker_context_from_the_environment_wins_over_the_config(
    answering: str, silent: str, tmp_path: Path
) -> None:
    write_context(tmp_path, "dead", silent)
    write_context(tmp_path, "live", answering, current=False)
    picked = choice.choose("auto", environ={"DOCKER_CONTEXT": "live"}, home=tmp_path)
    assert picked.host == answering and picked.name == "docker"


def test_docker_host_wins_over_a_context(answering: str, silent: str, tmp_path: Path) -> None:
    write_context(tmp_path, "live", answering)
    picked = choice.choose("auto", environ={"DOCKER_HOST": silent}, home=tmp_path)
    assert picked.name == "none" and "DOCKER_HOST" in picked.why


@pytest.mark.skipif(Path(choice.DEFAULT_SOCKET).exists(), reason="this machine has a Docker socket")
def test_nothing_configured(tmp_path: Path) -> None:
    picked = choice.choose("auto", environ={"XDG_RUNTIME_DIR": str(tmp_path)}, home=tmp_path)
    assert picked.name == "none" and "no Docker engine configured" in picked.why


# -- through the CLI -----------------------------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its Docker settings (an empty value is unset)."""
    unset = {k: "" for k in os.environ if k.startswith("DOCKER_")}
    return {**unset, "HOME": str(home), "XDG_RUNTIME_DIR": str(home), **extra}


def test_status_names_the_runtime_and_why(cli: Any, demo: Any, silent: str, tmp_path: Path) -> None:
    proc = cli("status", "--data-dir", str(demo.data_dir), env=_env(tmp_path, DOCKER_HOST=silent))
    assert proc.returncode == 0, proc.stderr
    assert (
        f"runtime:           none (auto: no Docker engine answers at DOCKER_HOST ({silent}))"
        in (proc.stdout)
    )
    report = json.loads(
        cli("status", "--json", "--data-dir", str(demo.data_dir), env=_env(tmp_path)).stdout
    )
    assert report["runtime_why"].startswith("auto: "), report


def test_a_change_refuses_when_the_data_are_in_an_engine_that_does_not_answer(
    cli: Any, demo: Any, silent: str, tmp_path: Path
) -> None:
    """The database of a Coolify v3 install lives in the Docker volume: with no engine, there
    is nothing on the host to upgrade, and falling back to files only would say otherwise."""
    demo.db_path.unlink()  # as on a real host: prod.db is inside the coolify-db volume
    before = tree_hash(demo.data_dir)
    for args in (
        ("upgrade", "--yes"),
        ("start",),
        ("backup", "create"),
        ("secrets", "roll", "--yes"),
    ):
        proc = cli(*args, "--data-dir", str(demo.data_dir), env=_env(tmp_path, DOCKER_HOST=silent))
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
        line = proc.stderr.strip()
        assert len(line.splitlines()) == 1, proc.stderr
        assert "its database is in the Docker volume coolify-db" in line, line
        assert "no Docker engine answers" in line and "start Docker" in line, line
    assert tree_hash(demo.data_dir) == before
    # reading is still fine, and says why
    proc = cli("status", "--data-dir", str(demo.data_dir), env=_env(tmp_path, DOCKER_HOST=silent))
    assert proc.returncode == 0 and "no Docker engine answers" in proc.stdout


def test_start_with_no_runtime_says_nothing_started(cli: Any, demo: Any) -> None:
    proc = cli("start", "--runtime", "none", "--data-dir", str(demo.data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "nothing was started" in proc.stdout and "is running" not in proc.stdout
