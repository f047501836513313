"""The taskcluster queue source passes ``provisioner.testing``'s queue source contract: against the local stub
deployment (127.0.0.1), and against a deployment that answers 500 to everything (on the virtual clock)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from provisioner import PluginContext
from provisioner.testing import QueueSourceContract
from provisioner_taskcluster.settings import Settings
from provisioner_taskcluster.source import TaskclusterQueues
from provisioner_taskcluster.stub import StubDeployment
from tc_helpers import Q1, Q2, StubAdapter, make_response

WORKERS = [{"workerGroup": "lambda", "workerId": f"R5CW{i:04d}", "firstClaim": "2025-03-02T10:15:00.000Z"}
           for i in range(3)]


class TestTaskclusterQueueSource(QueueSourceContract):
    queues = (Q1, Q2)

    @pytest.fixture(autouse=True)
    def _deployment(self) -> Iterator[None]:
        with StubDeployment(workers=WORKERS, page_size=2) as self.deployment:
            yield

    def make_source(self, context: PluginContext) -> TaskclusterQueues:
        return TaskclusterQueues.from_options({"root_url": self.deployment.root_url}, context)

    def make_failing_source(self, context: PluginContext) -> TaskclusterQueues:
        session = requests.Session()
        session.mount("https://", StubAdapter(lambda request: make_response(request, 500, {"code": "InternalError"})))
        return TaskclusterQueues(Settings.resolve({}, context.environ), context, session=session)
