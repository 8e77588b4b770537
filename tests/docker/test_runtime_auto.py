"""``--runtime auto`` against the real engine: found through DOCKER_HOST, and through a Docker
context when DOCKER_HOST is not set (the way rootless Docker and remote engines are set up)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its Docker settings (an empty value is unset)."""
    unset = {k: "" for k in os.environ if k.startswith("DOCKER_")}
    return {**unset, "HOME": str(home), "XDG_RUNTIME_DIR": str(home), **extra}


def _status(cli: Any, demo: Any, env: dict[str, str]) -> dict[str, Any]:
    proc = cli("status", "--json", "--data-dir", str(demo.data_dir), env=env)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_auto_finds_the_engine_at_docker_host(
    cli: Any, demo: Any, docker_host: str, tmp_path: Path
) -> None:
    report = _status(cli, demo, _env(tmp_path, DOCKER_HOST=docker_host))
    assert report["runtime"] == "docker", report
    assert report["runtime_why"] == f"auto: DOCKER_HOST ({docker_host}) answers"


def test_auto_finds_the_engine_of_the_current_docker_context(
    cli: Any, demo: Any, docker_host: str, tmp_path: Path
) -> None:
    name = "rig"
    meta = tmp_path / ".docker" / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": docker_host}}})
    )
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"currentContext": name}))
    report = _status(cli, demo, _env(tmp_path))
    assert report["runtime"] == "docker", report
    assert report["runtime_why"] == f"auto: the Docker context 'rig' ({docker_host}) answers"
