"""End to end over real sockets: the plugin against the local StubDeployment (127.0.0.1), on the system clock."""

from __future__ import annotations

import requests

from provisioner import PluginContext, Pool, QueueCounts
from provisioner_taskcluster.source import TaskclusterQueues
from provisioner_taskcluster.stub import StubDeployment
from tc_helpers import Q1, Q2


def source_for(deployment: StubDeployment, **options: object) -> TaskclusterQueues:
    return TaskclusterQueues.from_options({"root_url": deployment.root_url, **options}, PluginContext(environ={}))


def test_tc_stub_batch_cycle():
    workers = [{"workerGroup": "lambda", "workerId": f"R5CW{i:04d}", "firstClaim": "2025-03-02T10:15:00.000Z",
                "quarantineUntil": "3025-06-09T22:05:00.000Z" if i == 3 else "2015-06-10T08:00:01.000Z"}
               for i in range(5)]
    with StubDeployment(counts=lambda q: (3, 1) if q == Q1 else (0, 0), workers=workers, page_size=2) as deployment:
        source = source_for(deployment)
        assert source.counts([Q1, Q2]) == {Q1: QueueCounts(3, 1), Q2: QueueCounts(0, 0)}
        answer = source.workers([Q1, Q2])
        assert [w.worker_id for w in answer[Q1]] == [f"R5CW{i:04d}" for i in range(5)]  # three pages
        assert [w.worker_id for w in answer[Q2] if w.quarantined_until > 2e9] == ["R5CW0003"]
        pool = Pool(name="a55", queue=Q1, queue_source="taskcluster", device_provider="sim", launcher="sim")
        assert source.check([pool], network=True) == []
        source.close()
    assert deployment.calls == {"taskQueueCountsBatch": 1, "listWorkers": 6, "ping": 1}


def test_tc_stub_old_deployment_and_unknown_paths():
    with StubDeployment(has_batch=False) as deployment:
        source = source_for(deployment)
        assert set(source.counts([Q1, Q2]).values()) != {None}
        source.counts([Q1, Q2])
        answer = requests.get(deployment.root_url + "/api/nothing/v1/here", timeout=5)
        source.close()
    assert answer.status_code == 404 and answer.json()["code"] == "ResourceNotFound"
    assert deployment.calls == {"taskQueueCountsBatch": 1, "taskQueueCounts": 4, "unknown": 1}


def test_tc_stub_refuses_a_bad_signature():
    with StubDeployment(credentials=("client", "right-token")) as deployment:
        environ = {"TASKCLUSTER_CLIENT_ID": "client", "TASKCLUSTER_ACCESS_TOKEN": "wrong-token"}
        source = TaskclusterQueues.from_options({"root_url": deployment.root_url}, PluginContext(environ=environ))
        source.counts([Q1, Q2])  # a POST: the body is signed too
        source.close()
    assert deployment.hawk_ok == [False]
