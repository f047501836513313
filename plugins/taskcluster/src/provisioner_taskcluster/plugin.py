"""Entry point module (group ``provisioner``, name ``taskcluster``): offers the ``taskcluster`` queue source."""

from __future__ import annotations

from collections.abc import Iterator

from provisioner import RoleSpec, hookimpl

from .settings import OPTIONS
from .source import NAME, TaskclusterQueues


@hookimpl
def provisioner_queue_sources() -> Iterator[RoleSpec]:
    yield RoleSpec(
        name=NAME,
        factory=TaskclusterQueues.from_options,
        options=OPTIONS,
        description="pending/claimed counts (taskQueueCounts) and workers: claims, quarantine (listWorkers)",
    )
