"""What an app is, to the rest of the tool: the interface each app fills in (``Profile``) and the
types it declares its secrets and containers with. Apps live in ``coolify_migrate.apps`` and only
implement this; nothing outside them names an app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from packaging.version import Version

from coolify_migrate.core.codec import Codec
from coolify_migrate.core.errors import UsageError
from coolify_migrate.core.output import Output
from coolify_migrate.core.secret import Secret

if TYPE_CHECKING:
    from coolify_migrate.core.context import Context
    from coolify_migrate.core.store import Store


class EnvFile(Protocol):
    """The app's settings file as a profile reads and edits it (``config.envfile.EnvFile``)."""

    def get(self, key: str) -> str | None: ...

    def secret(self, key: str) -> Secret | None: ...

    def set(self, key: str, value: str | Secret) -> bool: ...

    def matching(self, pattern: re.Pattern[str]) -> Iterator[tuple[str, str]]: ...


class EncryptedColumn(NamedTuple):
    """One encrypted field of the app's database: where it is, and what reads it."""

    table: str
    column: str
    nullable: bool = False
    # Coolify v3: a legacy per-service field that the app's own 3.12.33 roll never re-encrypted
    missed_by_app_roll: bool = False
    codec: Codec | None = None  # this field's own, when it is not the app's (``Profile.codec``)

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


class ComposeSpec(NamedTuple):
    """How an app runs as a Docker Compose project in its install directory.

    ``app_image`` is the repository of the app's own image (without a tag): the services that
    use it are the app (stopped, switched to another tag, recreated, health-gated); the others
    are ``data_services`` or helpers, which stay up while a backup or a migration runs.
    """

    app_image: str
    compose_files: tuple[str, ...] = ("compose.yaml", "docker-compose.yml")  # first found
    env_file: str = "env"
    data_services: tuple[str, ...] = ()
    db_service: str | None = None  # where the database server (and its tools) run
    health_services: tuple[str, ...] = ()  # whose health gates a start; default: every app one


class DerivedForm(NamedTuple):
    """A key of a form the app's old installers derived from something guessable (Coolify v3:
    the install time): how to describe it, and the most entropy it can carry."""

    describe: str
    alphabet: str
    bits: float


class SecretSpec(NamedTuple):
    """One secret the app reads from its settings file, declared so that the key machinery (roll,
    verify, audit, repair, adoption) needs no code of the app's own.

    ``env_keys`` are where the app looks, in its order of preference: the first one set is the
    value in use. With ``writes_all`` every one of them gets the new value (Coolify v3 re-rolls at
    start when KEY and BETTER differ); otherwise only the first. ``fallback`` names the secret
    whose value the app uses when none of ``env_keys`` is set (Redash's data key falls back to its
    cookie secret). ``empty_is_set``: a line ``KEY=`` gives the empty string as the value (Redash)
    rather than leaving it unset (Coolify). Previous values are kept as ``keep_as`` with ``{ms}``
    (the tool's own convention: the apps never read them).
    """

    name: str
    role: str  # what it protects, for messages: "encrypts the data sources' options"
    env_keys: tuple[str, ...]
    keep_as: str
    fallback: str | None = None
    writes_all: bool = False
    empty_is_set: bool = False
    encrypts: bool = False  # the key the encrypted fields are under
    length: int | None = None  # exact length in bytes the app needs, if any
    alphabet: str = ""  # new values are drawn from it (never characters a parser disagrees on)
    new_length: int = 32
    rolling_ends: str = ""  # what a roll breaks for users ("everyone logs in again")

    def kept(self) -> re.Pattern[str]:
        head, _, tail = self.keep_as.partition("{ms}")
        return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))


class KeyCandidate(NamedTuple):
    """A key the instance knows, and where it was found (``COOLIFY_SECRET_KEY``, keyring...)."""

    source: str
    key: Secret


class Profile:
    """Base class; a profile subclasses it and fills in the class attributes."""

    name: str = ""
    title: str = ""
    encrypted_columns: tuple[EncryptedColumn, ...] = ()
    id_column: str = "id"
    db_relative: str = "db/prod.db"
    docker_volume: str = ""
    containers: tuple[str, ...] = ()
    main_container: str = ""
    image_repo: str = ""
    fallback_repos: tuple[str, ...] = ()
    required_stops: tuple[Version, ...] = ()
    withdrawn: tuple[Version, ...] = ()  # releases their publisher took back: never a target
    version_env_key: str = "TAG"
    # Names of .env keys whose values are secrets (redacted everywhere).
    secret_env_pattern: re.Pattern[str] = re.compile(r"$^")
    min_version: Version = Version("0")
    # Environment variables that belong to the app (.env): when a container is recreated they come
    # from the host .env only, never carried over from the old container.
    app_env_pattern: re.Pattern[str] = re.compile(r"$^")

    env_file: str = ".env"  # the settings file in the install directory
    # the settings key naming this installation (Coolify: COOLIFY_APP_ID), recorded with backups
    instance_key: str | None = None
    default_dir: str = "~/coolify"  # the install directory when none is given

    @property
    def codec(self) -> Codec:
        """How the app stores an encrypted value. A property, so that a profile may make its
        codec when a value is first read rather than on import (docs/performance.md)."""
        raise NotImplementedError(f"{self.name} declares no codec")

    def recognises(self, directory: Path) -> bool:
        """Whether ``directory`` holds an installation of this app."""
        return (directory / self.env_file).is_file()

    def tag_for(self, version: Version) -> str:
        """The image tag of ``version`` (an app whose tags are not PEP 440 maps them)."""
        return str(version)

    def image_for(self, version: Version) -> str:
        return f"{self.image_repo}:{self.tag_for(version)}"

    def fallback_images_for(self, version: Version) -> tuple[str, ...]:
        return tuple(f"{repo}:{self.tag_for(version)}" for repo in self.fallback_repos)

    def data_version(self, conn: Any) -> tuple[tuple[str, ...], str] | None:
        """(the versions the app's own schema fits, a description) read from the database, or
        None when the app keeps no such record. Raise ``Refused`` for a schema it cannot know."""
        return None

    def backup_files(self, ctx: Context) -> list[Path]:
        """Settings files a backup keeps beside the data and a rollback puts back with them
        (Redash: its env file and Compose file). Coolify v3's ``.env`` is not among them: its
        keys live in the keyring, and a rollback writes the one the backup needs."""
        return []

    def backup_facts(self, ctx: Context) -> dict[str, Any]:
        """What a backup's manifest records about the app beside the data (Redash: every
        service's image, the alembic head, each secret's fingerprint). Public values only."""
        return {}

    def default_manifest(self) -> Path | None:
        """The app's packaged versions.json, if it ships one."""
        return None

    def is_required_stop(self, version: Version) -> bool:
        return version in self.required_stops

    # The secrets the app reads (``SecretSpec``); the one with ``encrypts`` is the data key.
    secrets: tuple[SecretSpec, ...] = ()

    def secret_spec(self, name: str) -> SecretSpec:
        for spec in self.secrets:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def data_secret(self) -> SecretSpec:
        return next(s for s in self.secrets if s.encrypts)

    def _own_value(self, env: EnvFile, spec: SecretSpec) -> KeyCandidate | None:
        for name in spec.env_keys:
            value = env.get(name)
            if value is not None and (value or spec.empty_is_set):
                return KeyCandidate(name, Secret(value))
        return None

    def falls_back(self, env: EnvFile, spec: SecretSpec) -> bool:
        """Whether the app takes ``spec``'s value from its fallback (none of its keys is set)."""
        return spec.fallback is not None and self._own_value(env, spec) is None

    def resolve(self, env: EnvFile, spec: SecretSpec) -> KeyCandidate | None:
        """The value the app uses for ``spec``: its first set env key, else its fallback's."""
        own = self._own_value(env, spec)
        if own is not None:
            return own
        if spec.fallback is not None:
            found = self.resolve(env, self.secret_spec(spec.fallback))
            if found is not None:
                return KeyCandidate(f"{found.source} (fallback)", found.key)
        return None

    def active_key(self, env: EnvFile) -> KeyCandidate | None:
        """The data key the app would use now."""
        return self.resolve(env, self.data_secret)

    def key_candidates(self, env: EnvFile) -> list[KeyCandidate]:
        """Every data key the settings file names: in use, other env keys, kept ones (newest
        first), the fallback's value."""
        spec = self.data_secret
        found: list[KeyCandidate] = []
        active = self.resolve(env, spec)
        if active is not None:
            found.append(active)
        for name in spec.env_keys:
            value = env.get(name)
            if value:
                found.append(KeyCandidate(name, Secret(value)))
        pattern = spec.kept()
        kept = sorted(
            env.matching(pattern),
            key=lambda kv: -int(m.group(1)) if (m := pattern.fullmatch(kv[0])) else 0,
        )
        found.extend(KeyCandidate(k, Secret(v)) for k, v in kept if v)
        if spec.fallback is not None:
            other = self.resolve(env, self.secret_spec(spec.fallback))
            if other is not None:
                found.append(other)
        unique: list[KeyCandidate] = []
        for cand in found:
            if all(cand.key != u.key for u in unique):
                unique.append(cand)
        return unique

    def promote_key(self, env: EnvFile, new: Secret, old: Secret | None, at_ms: int) -> None:
        """Make ``new`` the data key in use; ``old`` is kept (``keep_as``) unless it already is."""
        spec = self.data_secret
        if old is not None and old != new:
            kept = any(Secret(v) == old for _, v in env.matching(spec.kept()))
            if not kept:
                env.set(spec.keep_as.format(ms=at_ms), old)
        self.install_key_state(env, new)

    def install_key_state(self, env: EnvFile, key: Secret) -> None:
        """Make ``key`` the data key in use (rollback). Other known keys stay in the file."""
        spec = self.data_secret
        for name in spec.env_keys if spec.writes_all else spec.env_keys[:1]:
            env.set(name, key)

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
        if active is None or active.key != key:
            return False
        spec = self.data_secret
        return not spec.writes_all or all(env.secret(n) == key for n in spec.env_keys)

    # Keys published somewhere (documentation, a shipped default): anyone may hold them.
    compromised_keys: tuple[str, ...] = ()

    def derived_form(self, key: Secret) -> DerivedForm | None:
        """Whether ``key`` has the form of a key the app's installers derived from a seed."""
        return None

    def find_seed(
        self, key: Secret, centres_ms: list[int], window_ms: int, *, workers: int, out: Any
    ) -> tuple[int | None, int]:
        """(the seed time that derives ``key``, candidates tried): searched around each centre."""
        return None, 0

    def reroll_plaintext(self, stored: str, old_key: Secret) -> bytes | None:
        """What the app's own start-up roll wrote (under its new key) for ``stored`` when it
        believed ``old_key`` was the old one; None when it left the value unchanged, or when the
        app never rolled keys itself (then ``secrets repair`` has nothing to undo)."""
        return None

    repairs_rerolls: bool = False  # whether ``reroll_plaintext`` models a real app roll

    def new_key(self, spec: SecretSpec | None = None) -> Secret:
        """A fresh value for ``spec`` (the data key by default) from a CSPRNG, in the form the
        app accepts (used by a roll)."""
        spec = spec or self.data_secret
        if not spec.alphabet:
            raise NotImplementedError(f"{self.name} declares no alphabet for {spec.name}")
        import secrets  # a key is made by a roll or an install, not at every start

        return Secret("".join(secrets.choice(spec.alphabet) for _ in range(spec.new_length)))

    @property
    def secret_names(self) -> re.Pattern[str]:
        """The names of settings whose values are secrets (redacted everywhere)."""
        names = [re.escape(n) for spec in self.secrets for n in spec.env_keys]
        names += [spec.kept().pattern for spec in self.secrets]
        names += [self.secret_env_pattern.pattern]
        return re.compile("|".join(f"(?:{n})" for n in names))

    def secret_values(self, env: EnvFile) -> list[str]:
        return [v for k, v in env.matching(self.secret_names) if v]

    def install_evidence_sql(self) -> list[tuple[str, str]]:
        """(label, SQL returning one timestamp) queries that date the install."""
        return []

    def generated_env(self, env: EnvFile | None = None) -> dict[str, str]:
        """Keys a fresh install needs, with freshly generated values (install.sh); ``env`` is
        the settings file as it is, for values that must agree with ones it already has."""
        return {}

    # Whether a new major version is another app (Coolify v3 -> v4: refused); otherwise majors
    # are crossed one at a time, through the manifest's required stops (Redash).
    majors_are_apps: bool = True

    # What runs the app: "docker" (one container) or "compose" (a Compose project); the CLI's
    # --runtime docker (or auto, with Docker answering) means the app's own kind.
    runtime_kind: str = "docker"

    def data_marker(self, directory: Path) -> Path | None:
        """Where the app's data live in its install directory when that is not the database
        file itself (Redash: ``postgres-data/``), or None."""
        return None

    def data_in_runtime(self, ctx: Context) -> str | None:
        """Where the instance's data live when only the app's runtime reaches them (a Docker
        volume, a Compose service), said in a few words; None when they are on the host (or
        there is no instance). A command that changes something refuses to run without an
        engine then, instead of managing files that are not the data."""
        if not self.docker_volume or ctx.db_override is not None:
            return None
        if ctx.env_path.exists() and not (ctx.data_dir / self.db_relative).exists():
            return f"its database is in the Docker volume {self.docker_volume}"
        return None

    def settings_files(self, ctx: Context, version: Version) -> dict[str, str]:
        """Files a fresh install writes beside the settings file when none is there yet (name
        -> text; Redash: its Compose file for ``version``)."""
        return {}

    def initialise(self, ctx: Context) -> str | None:
        """The app's own setup of an empty database before its first start (Redash:
        ``create_db``); returns what was done, or None when there was nothing to do."""
        return None

    def compose_spec(self) -> ComposeSpec | None:
        """The app's Compose project, for apps that run as one (None: a single container)."""
        return None

    def container_spec(self) -> ContainerSpec | None:
        """The app's main container for a fresh install (None: the profile has no container)."""
        return None

    def steps(self) -> list[Any]:
        """The profile's built-in migration steps (``coolify_migrate.engine.steps.Step``)."""
        return []

    def open_store(self, ctx: Context) -> Store:
        """The app's database (``coolify_migrate.stores``), for this instance."""
        raise NotImplementedError

    def create_demo(
        self,
        data_dir: Path,
        db_path: Path,
        *,
        version: str,
        installed_at_ms: int,
        rows: int,
        out: Output | None = None,
    ) -> Any:
        """Write a realistic legacy instance (see ``coolify-migrate demo``)."""
        raise UsageError(f"the {self.name} profile has no demo instance")
