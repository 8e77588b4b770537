"""App profiles: everything the engine needs to know about one app, and nothing app-specific
outside them. Coolify v3 is the first profile; Redash can be added as another."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from installer.crypto.codecs import Codec
from installer.envfile import EnvFile
from installer.errors import UsageError
from installer.secret import Secret


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    nullable: bool = False
    # Coolify v3: a legacy per-service field that the app's own 3.12.33 roll never re-encrypted
    missed_by_app_roll: bool = False

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class ContainerSpec:
    """How a fresh app container is made when none exists yet (a new install).

    A container that already exists is recreated from *its own* configuration instead; this is
    only the starting point. ``binds`` are host paths mounted only when they exist on the host.
    """

    name: str
    volumes: dict[str, str]  # named volume -> mount path in the container
    labels: dict[str, str]
    network: str  # default; COOLIFY_MIGRATE_DOCKER_NETWORK overrides it
    ports: dict[str, int] = field(default_factory=dict)  # "3000/tcp" -> host port
    binds: dict[str, str] = field(default_factory=dict)  # host path -> container path
    restart_policy: str = "unless-stopped"


@dataclass(frozen=True)
class KeyCandidate:
    """A key the instance knows, and where it was found (``COOLIFY_SECRET_KEY``, keyring...)."""

    source: str
    key: Secret


class Profile:
    """Base class; a profile subclasses it and fills in the class attributes."""

    name: str = ""
    title: str = ""
    codec: Codec
    encrypted_columns: tuple[EncryptedColumn, ...] = ()
    id_column: str = "id"
    db_relative: str = "db/prod.db"
    docker_volume: str = ""
    containers: tuple[str, ...] = ()
    main_container: str = ""
    image_repo: str = ""
    fallback_repos: tuple[str, ...] = ()
    required_stops: tuple[Version, ...] = ()
    version_env_key: str = "TAG"
    # Names of .env keys whose values are secrets (redacted everywhere).
    secret_env_pattern: re.Pattern[str] = re.compile(r"$^")
    key_length: int = 32
    min_version: Version = Version("0")
    # Environment variables that belong to the app (.env): when a container is recreated they come
    # from the host .env only, never carried over from the old container.
    app_env_pattern: re.Pattern[str] = re.compile(r"$^")

    def image_for(self, version: Version) -> str:
        return f"{self.image_repo}:{version}"

    def fallback_images_for(self, version: Version) -> tuple[str, ...]:
        return tuple(f"{repo}:{version}" for repo in self.fallback_repos)

    def is_required_stop(self, version: Version) -> bool:
        return version in self.required_stops

    def active_key(self, env: EnvFile) -> KeyCandidate | None:
        raise NotImplementedError

    def key_candidates(self, env: EnvFile) -> list[KeyCandidate]:
        raise NotImplementedError

    def promote_key(self, env: EnvFile, new: Secret, old: Secret | None, at_ms: int) -> None:
        """Make ``new`` the key the app uses, keeping ``old`` where the app's tooling expects it."""
        raise NotImplementedError

    def install_key_state(self, env: EnvFile, key: Secret) -> None:
        """Make ``key`` the active key (rollback). Other known keys stay in the file."""
        raise NotImplementedError

    # Where the app inside its container keeps a file of settings it loads at start (Coolify v3:
    # ``/app/.env``), if any: the runtime reads it for the keys only the container knows.
    container_dotenv: str | None = None

    def app_keys(self, process_env: dict[str, str], dotenv: dict[str, str]) -> list[KeyCandidate]:
        """The keys a running app container knows, the one it uses first."""
        return []

    def start_hazard(
        self, process_env: dict[str, str], dotenv: dict[str, str], version: str | None
    ) -> str | None:
        """Why starting the app with this environment would damage its data, or None."""
        return None

    def start_safe(self, env: EnvFile, key: Secret, version: str | None = None) -> bool:
        """Does the host ``.env`` make the app (at ``version``, else the one it names) start on
        ``key`` and change nothing at start?"""
        active = self.active_key(env)
        return active is not None and active.key == key

    def new_key(self) -> Secret:
        """A fresh data key from a CSPRNG, in the form the app accepts (used by a key roll)."""
        raise NotImplementedError

    def secret_values(self, env: EnvFile) -> list[str]:
        return [v for k, v in env.matching(self.secret_env_pattern) if v]

    def install_evidence_sql(self) -> list[tuple[str, str]]:
        """(label, SQL returning one timestamp) queries that date the install."""
        return []

    def generated_env(self) -> dict[str, str]:
        """Keys a fresh install needs, with freshly generated values (install.sh)."""
        return {}

    def container_spec(self) -> ContainerSpec | None:
        """The app's main container for a fresh install (None: the profile has no container)."""
        return None

    def steps(self) -> list[Any]:
        """The profile's built-in migration steps (``installer.engine.steps.Step``)."""
        return []

    def create_demo(
        self, data_dir: Path, db_path: Path, *, version: str, installed_at_ms: int, rows: int
    ) -> Any:
        """Write a realistic legacy instance (see ``coolify-migrate demo``)."""
        raise UsageError(f"the {self.name} profile has no demo instance")


def get_profile(name: str = "coolify-v3") -> Profile:
    from installer.profiles.coolify_v3 import CoolifyV3

    profiles: dict[str, Profile] = {"coolify-v3": CoolifyV3()}
    try:
        return profiles[name]
    except KeyError as err:
        raise UsageError(
            f"unknown app profile {name!r}", hint=f"one of: {', '.join(profiles)}"
        ) from err
