"""What runs the app, as the library sees it: the interface every runtime fills in, and ``none``
(files only: for an app this tool does not run, and for the demo). The Docker and Compose
runtimes live in ``coolify_migrate.runtimes``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # named in signatures only: a command that never updates does not import it
    from coolify_migrate.core.release import Release


class Runtime(Protocol):
    name: str

    def check(self) -> None:
        """Raise a Refused error when the runtime cannot be reached."""

    def current_image_tag(self) -> str | None:
        """The version tag of the app's running image, if the runtime knows one."""

    def database_path(self) -> Path | None:
        """Where the runtime keeps the app's database on the host, if it knows."""

    def app_settings(self) -> tuple[dict[str, str], dict[str, str]] | None:
        """The app container's environment and the settings file it loads at start (the
        profile's ``container_dotenv``), as the container has them now; None without one."""

    def ensure_images(self, release: Release) -> str:
        """Make the release's image present locally (before anything is stopped)."""

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def update(self, release: Release, image: str) -> None:
        """Replace the app by ``image``, health-gated. On failure the previous container is put
        back in place, stopped: the caller restores the data, then calls ``rollback_to``."""

    def rollback_to(self, version: str) -> None:
        """Run the app at ``version`` again (after a failed upgrade or a rollback)."""

    def finish(self) -> None:
        """Drop what was kept for rollback once an upgrade has fully succeeded."""

    def config_files(self) -> list[Path]:
        """Files of the runtime's own that an upgrade changes (a Compose file's image tags):
        saved before it and put back by a revert."""


class NoneRuntime:
    """Files only: for apps not run by a runtime this tool manages (and for the demo)."""

    name = "none"

    def check(self) -> None:
        pass

    def current_image_tag(self) -> str | None:
        return None

    def database_path(self) -> Path | None:
        return None

    def app_settings(self) -> tuple[dict[str, str], dict[str, str]] | None:
        return None

    def ensure_images(self, release: Release) -> str:
        return release.image

    def stop(self) -> None:
        pass

    def start(self) -> None:
        pass

    def update(self, release: Release, image: str) -> None:
        pass

    def rollback_to(self, version: str) -> None:
        pass

    def finish(self) -> None:
        pass

    def config_files(self) -> list[Path]:
        return []
