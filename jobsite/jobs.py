"""RQ job functions: importable, over ids and plain data; they find this process's services here."""

from __future__ import annotations

from .services import Services
from .settings import load_settings

_services: Services | None = None


def use(services: Services) -> Services:
    """Set the services jobs in this process use (the worker does it at start)."""
    global _services
    _services = services
    return services


def services() -> Services:
    global _services
    if _services is None:
        _services = Services(load_settings())
    return _services


def on_worker_start() -> None:
    """Checks and set-up when a worker starts."""


def upkeep() -> None:
    """Periodic work of the delivery side, run by any worker between jobs."""
