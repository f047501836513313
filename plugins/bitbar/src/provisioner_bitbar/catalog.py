"""The ids a launch needs, looked up by name: projects, device groups (and their members), the framework and the
two files (mbd ``configuration.configure()`` does the same once at start-up; facts §2a).

A ``Catalog`` is one snapshot of those lists, read together (4 list reads) and kept until it is ``resolve_every``
seconds old or a launch's 404 says an id went stale. A name it does not hold is ``Missing``: the caller reads a
fresh snapshot before it gives up (a missing id means ask again), and never remembers an absence.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provisioner import PluginContext, RemoteError

from .api import BitbarApi


class Missing(Exception):
    """A name the server does not (or no longer) hold: one line naming it and the fix."""


@dataclass(frozen=True)
class Target:
    """Everything a ``POST runs`` names by id."""

    project_id: int
    framework_id: int
    group_id: int
    test_file_id: int
    application_file_id: int


@dataclass
class Catalog:
    loaded_at: float
    projects: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    frameworks: dict[str, int]
    files: dict[str, int]  # name -> the newest file of that name
    members: dict[int, list[str]] = field(default_factory=dict)  # group id -> its devices' names, read on demand

    @classmethod
    def load(cls, api: BitbarApi, now: float) -> Catalog:
        projects: dict[str, dict[str, Any]] = {}
        for row in api.rows("me/projects"):
            name = row.get("name")
            if isinstance(name, str) and row.get("archiveTime") is None and _id(row) is not None:
                if name in projects:
                    raise RemoteError(f"GET me/projects: two live projects are named {name!r}; archive one")
                projects[name] = row
        groups: dict[str, dict[str, Any]] = {}
        for row in api.rows("me/device-groups"):
            name = row.get("displayName")
            if isinstance(name, str) and _id(row) is not None:
                if name in groups:
                    raise RemoteError(f"GET me/device-groups: two device groups are named {name!r}")
                groups[name] = row
        frameworks = {row["name"]: _id(row) for row in api.rows("admin/frameworks")
                      if isinstance(row.get("name"), str) and _id(row) is not None}
        files: dict[str, int] = {}
        newest: dict[str, float] = {}
        for row in api.rows("files", {"sort": "createTime_a"}):
            name, created = row.get("name"), row.get("createTime")
            created = created if isinstance(created, (int, float)) and not isinstance(created, bool) else 0
            if isinstance(name, str) and _id(row) is not None and created >= newest.get(name, -1):
                files[name], newest[name] = _id(row), created
        return cls(now, projects, groups, frameworks, files)  # type: ignore[arg-type]

    def project_id(self, name: str) -> int:
        if name not in self.projects:
            raise Missing(f"project {name} not found (create it: provisioner bitbar-setup --apply)")
        return _id(self.projects[name])  # type: ignore[return-value]

    def group_id(self, name: str) -> int:
        if name not in self.groups:
            raise Missing(f"device group {name} not found (phone groups: provisioner bitbar-setup --apply)")
        return _id(self.groups[name])  # type: ignore[return-value]

    def framework_id(self, name: str) -> int:
        if name not in self.frameworks:
            raise Missing(f"framework {name} not found (frameworks are made by the vendor in Bitbar's UI)")
        return self.frameworks[name]

    def file_id(self, name: str) -> int:
        if name not in self.files:
            raise Missing(f"file {name} not found (archived? upload it again)")
        return self.files[name]

    def group_members(self, api: BitbarApi, group_id: int) -> list[str]:
        if group_id not in self.members:
            self.members[group_id] = sorted(
                str(row.get("displayName")) for row in api.rows(f"device-groups/{group_id}/devices"))
        return self.members[group_id]


class Catalogs:
    """The current snapshot, shared by the loop's thread and the submission threads."""

    def __init__(self, api: BitbarApi, context: PluginContext, max_age: float) -> None:
        self._api, self._context, self._max_age = api, context, max_age
        self._lock = threading.Lock()
        self.current: Catalog | None = None
        self.generation = 0  # how many snapshots were read

    def get(self, stale: int | None = None) -> tuple[Catalog, int]:
        """The snapshot and its generation; a new one when there is none, when it is too old, or when it is
        still generation ``stale`` (an id of it went stale: threads that saw the same one reload it once)."""
        with self._lock:
            now = self._context.clock.now()
            current = self.current
            if current is None or now - current.loaded_at >= self._max_age or stale == self.generation:
                self.current = current = Catalog.load(self._api, now)
                self.generation += 1
            return current, self.generation

    def invalidate(self) -> None:
        with self._lock:
            self.current = None

    def resolve(self, build: Callable[[Catalog], Target]) -> Target:
        """``build(catalog)``; on ``Missing`` once more with a fresh snapshot (unless this one was just read)."""
        before = self.generation
        catalog, generation = self.get()
        try:
            return build(catalog)
        except Missing:
            if generation != before:
                raise
            return build(self.get(stale=generation)[0])


def _id(row: Mapping[str, Any]) -> int | None:
    value = row.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
