"""servicekit as a Django app: under uWSGI, it publishes the service's public key before any worker serves."""

from pathlib import Path

from django.apps import AppConfig, apps
from django.conf import settings


class ServicekitConfig(AppConfig):
    name = "servicekit"

    def ready(self) -> None:
        from servicekit import identity, server

        # Only the server publishes: django-admin commands and unit tests have no socket volume.
        if server.uwsgi is not None:
            identity.publish_public_key(Path(settings.SOCKET_DIR))


def app_labels_in(*folders: Path) -> set[str]:
    """The installed apps whose code is in one of the folders: a service's own (settings.BASE_DIR), servicekit's."""
    resolved = [folder.resolve() for folder in folders]
    return {app.label for app in apps.get_app_configs()
            if any(Path(app.path).resolve().is_relative_to(folder) for folder in resolved)}  # fmt: skip
