"""Contract suites: what the host expects of a queue source, a device provider and a job launcher.

A plugin's test module subclasses a suite (its name must start with ``Test``) and defines the ``make_*`` methods;
pytest then runs every ``test_*`` method of the suite against the plugin. A subclass that needs fixtures of its
own (a fake server, a cassette, a fake binary) takes them in an autouse fixture of its own and keeps them on
``self``; ``make_context(tmp_path)`` may be overridden to hand in an environment or a clock.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..model import JobState, LaunchRequest, LaunchResult, Phone, PhoneState, Pool, QueueCounts, RemoteJob, Worker
from ..types import DeviceProvider, JobLauncher, PluginContext, QueueSource, RemoteError
from ..values import name_problem
from .context import make_context


class _Contract:
    time_budget: float = 60.0  # seconds one call may take, virtual (``clock.sleep``) and wall time alike

    def make_context(self, tmp_path: Path) -> PluginContext:
        """The context the plugin's objects are built with (override for an environment, a clock, a job tag)."""
        return make_context(tmp_path)

    @pytest.fixture
    def contract_context(self, tmp_path: Path) -> PluginContext:
        return self.make_context(tmp_path)

    def timed(self, context: PluginContext, call: Callable[[], Any]) -> Any:
        """``call()``, which must return within ``time_budget`` on the context's clock and on the wall clock."""
        virtual, wall = context.clock.now(), time.perf_counter()
        answer = call()
        assert context.clock.now() - virtual <= self.time_budget, "took longer than time_budget on the host's clock"
        assert time.perf_counter() - wall <= self.time_budget, "took longer than time_budget"
        return answer

    @staticmethod
    def closing(obj: Any) -> Iterator[Any]:
        yield obj
        close = getattr(obj, "close", None)
        if callable(close):
            assert close() is None


def _valid_label(value: Any, what: str) -> None:
    assert isinstance(value, str), f"{what} must be a string, not {type(value).__name__}"
    problem = name_problem(value, what)
    assert problem is None, problem


class QueueSourceContract(_Contract):
    """A queue source, as the loop reads it every cycle.

    Define ``make_source(context)``; optionally ``make_failing_source(context)`` (a source whose remote fails every
    call) and ``queues`` (the queue ids asked). Checks: ``counts`` and ``workers`` answer a mapping with every queue
    asked; counts are ``QueueCounts`` of non-negative integers or ``None``; workers are sequences of ``Worker`` or
    ``None``; a failing remote gives ``None`` for every queue (never 0, never an empty list) or raises
    ``RemoteError``, and does so within ``time_budget``.
    """

    queues: Sequence[str] = ("proj-contract/queue-a", "proj-contract/queue-b")

    def make_source(self, context: PluginContext) -> QueueSource:
        raise NotImplementedError

    def make_failing_source(self, context: PluginContext) -> QueueSource | None:
        return None

    @pytest.fixture
    def contract_source(self, contract_context: PluginContext) -> Iterator[QueueSource]:
        yield from self.closing(self.make_source(contract_context))

    def test_counts_answer_every_queue(self, contract_source: QueueSource, contract_context: PluginContext) -> None:
        answer = self.timed(contract_context, lambda: contract_source.counts(list(self.queues)))
        assert isinstance(answer, Mapping)
        assert set(self.queues) <= set(answer), f"queues missing from the answer: {set(self.queues) - set(answer)}"
        for queue in self.queues:
            counts = answer[queue]
            if counts is not None:
                assert isinstance(counts, QueueCounts), f"{queue}: {type(counts).__name__}, not QueueCounts"
                for n in (counts.pending, counts.claimed):
                    assert isinstance(n, int) and not isinstance(n, bool) and n >= 0, f"{queue}: {counts}"

    def test_workers_answer_every_queue(self, contract_source: QueueSource, contract_context: PluginContext) -> None:
        answer = self.timed(contract_context, lambda: contract_source.workers(list(self.queues)))
        assert isinstance(answer, Mapping)
        assert set(self.queues) <= set(answer), f"queues missing from the answer: {set(self.queues) - set(answer)}"
        for queue in self.queues:
            listed = answer[queue]
            if listed is not None:
                assert isinstance(listed, Sequence) and not isinstance(listed, str)
                for worker in listed:
                    assert isinstance(worker, Worker), f"{queue}: {type(worker).__name__}, not Worker"
                    assert isinstance(worker.worker_id, str) and worker.worker_id

    @pytest.mark.parametrize("method", ["counts", "workers"])
    def test_a_failing_remote_is_unknown_never_zero(self, contract_context: PluginContext, method: str) -> None:
        source = self.make_failing_source(contract_context)
        if source is None:
            pytest.skip("no make_failing_source")
        for source in self.closing(source):
            try:
                answer = self.timed(contract_context, lambda: getattr(source, method)(list(self.queues)))
            except RemoteError as exc:
                assert "\n" not in str(exc).strip(), "a RemoteError's message is one line"
                return
            assert isinstance(answer, Mapping)
            assert {q: answer.get(q) for q in self.queues} == dict.fromkeys(self.queues), (
                "a queue the remote did not answer for is None (unknown), never 0 or []"
            )


class DeviceProviderContract(_Contract):
    """A device provider, as the loop reads it every cycle.

    Define ``make_provider(context)`` (its remote lists at least one phone and, if ``expects_jobs``, one of our
    jobs); optionally ``make_broken_provider(context)`` (its remote fails every call) and ``jobs_since(context)``.
    Checks: ``phones()`` lists ``Phone``s with valid, distinct UDIDs and ``PhoneState`` states; ``jobs(since)`` lists
    ``RemoteJob``s with an id, the pool and phone read from our labels (the phone may be ""), a ``JobState``,
    created at or after ``since``, and ``ended_at`` on ended jobs; a remote that fails raises ``RemoteError``
    (never an empty list); all within ``time_budget``.
    """

    expects_jobs: bool = False  # the fixture's remote lists some of our jobs: check there is one
    broken_methods: Sequence[str] = ("phones", "jobs")  # what the broken provider cannot tell (jobs kept locally: phones)

    def make_provider(self, context: PluginContext) -> DeviceProvider:
        raise NotImplementedError

    def make_broken_provider(self, context: PluginContext) -> DeviceProvider | None:
        return None

    def jobs_since(self, context: PluginContext) -> float:
        return context.clock.now() - 7200.0

    @pytest.fixture
    def contract_provider(self, contract_context: PluginContext) -> Iterator[DeviceProvider]:
        yield from self.closing(self.make_provider(contract_context))

    def test_phones_have_valid_udids_and_states(self, contract_provider: DeviceProvider,
                                                contract_context: PluginContext) -> None:
        phones = list(self.timed(contract_context, contract_provider.phones))
        assert phones, "the fixture's remote should list at least one phone"
        for phone in phones:
            assert isinstance(phone, Phone), f"{type(phone).__name__}, not Phone"
            _valid_label(phone.udid, "UDID")
            assert isinstance(phone.state, PhoneState), f"{phone.udid}: state {phone.state!r} is not a PhoneState"
        udids = [p.udid for p in phones]
        assert len(udids) == len(set(udids)), "each phone is listed once"

    def test_jobs_carry_our_labels(self, contract_provider: DeviceProvider, contract_context: PluginContext) -> None:
        since = self.jobs_since(contract_context)
        jobs = list(self.timed(contract_context, lambda: contract_provider.jobs(since)))
        if self.expects_jobs:
            assert jobs, "the fixture's remote lists jobs of ours: jobs() should report them"
        for job in jobs:
            check_job(job, since)

    @pytest.mark.parametrize("method", ["phones", "jobs"])
    def test_an_unknown_list_raises_remote_error(self, contract_context: PluginContext, method: str) -> None:
        if method not in self.broken_methods:
            pytest.skip(f"{method}() cannot be unknown for this provider")
        provider = self.make_broken_provider(contract_context)
        if provider is None:
            pytest.skip("no make_broken_provider")
        call = provider.phones if method == "phones" else lambda: provider.jobs(self.jobs_since(contract_context))
        for _ in self.closing(provider):
            with pytest.raises(RemoteError) as raised:
                self.timed(contract_context, call)
            assert "\n" not in str(raised.value).strip(), "a RemoteError's message is one line"


def check_job(job: Any, since: float) -> None:
    """What the host needs of one ``RemoteJob`` (see its docstring)."""
    assert isinstance(job, RemoteJob), f"{type(job).__name__}, not RemoteJob"
    assert isinstance(job.job_id, str) and job.job_id, "a job has an id"
    _valid_label(job.pool, "pool label")
    if job.udid:
        _valid_label(job.udid, "UDID label")
    assert isinstance(job.state, JobState), f"{job.job_id}: state {job.state!r} is not a JobState"
    assert isinstance(job.created_at, (int, float)) and job.created_at >= since, f"{job.job_id}: created before since"
    if job.state is JobState.ENDED:
        assert job.ended_at is not None and job.ended_at >= job.created_at, f"{job.job_id}: ended without ended_at"


class JobLauncherContract(_Contract):
    """A job launcher, as the loop calls it on a submission thread (and ``render`` in a dry run).

    Define ``make_launcher(context)`` and ``make_pool(context, targeting)``: a pool this launcher can launch for,
    ``targeting`` "pinned" (``udids`` names a phone the launch will name), "selector" (no phone named; return
    None where the launcher's cloud cannot place a job itself) or "group" (``udids`` names the phones, the
    launch names none and the cloud picks one of them; return None, or a pool of another targeting, where the
    launcher cannot). Optionally: ``make_provider(context)``, the device
    provider that lists this launcher's jobs (then the suite checks that a launched job comes back with its
    labels; it may be the launcher itself, as when one factory plays both roles); ``make_failing_launcher(context)`` (its submission fails); ``secrets`` (values that must never
    appear in a result). Checks: ``launch`` returns a ``LaunchResult`` with a job id, never raises; a failure is
    ``ok=False`` with a one-line detail free of secrets; a launch naming no phone is accepted for a selector pool
    and for a group pool;
    ``render``, if defined, returns text and starts nothing, submits nothing and leaves no file behind.
    """

    secrets: Sequence[str] = ()

    def make_launcher(self, context: PluginContext) -> JobLauncher:
        raise NotImplementedError

    def make_pool(self, context: PluginContext, targeting: str) -> Pool | None:
        raise NotImplementedError

    def make_provider(self, context: PluginContext) -> DeviceProvider | None:
        return None

    def make_failing_launcher(self, context: PluginContext) -> JobLauncher | None:
        return None

    @staticmethod
    def request(context: PluginContext, pool: Pool, udid: str, launch_id: str = "contract-1",
                dry_run: bool = False) -> LaunchRequest:
        """The request the host makes: labels ``(job_tag, pool, udid)``."""
        return LaunchRequest(launch_id, pool, udid, (context.job_tag, pool.name, udid), dry_run=dry_run)

    def _pool(self, context: PluginContext, targeting: str) -> tuple[Pool, str]:
        pool = self.make_pool(context, targeting)
        if pool is None:
            pytest.skip(f"no {targeting} pool for this launcher")
        if targeting == "pinned":
            assert pool.udids, "a pinned pool names its phones"
            return pool, pool.udids[0]
        if targeting == "group":
            if pool.targeting != "group":  # a suite written before group pools: no group pool offered
                pytest.skip("no group pool for this launcher")
            assert pool.udids and pool.selector is None, "a group pool names its phones (the group's members)"
            return pool, ""
        assert pool.selector is not None and pool.targeting == "selector", "a selector pool has targeting selector"
        return pool, ""

    def _launch_and_find(self, context: PluginContext, targeting: str) -> None:
        pool, udid = self._pool(context, targeting)
        since = context.clock.now()
        for launcher in self.closing(self.make_launcher(context)):
            result = self.timed(context, lambda: launcher.launch(self.request(context, pool, udid)))
            assert isinstance(result, LaunchResult), f"{type(result).__name__}, not LaunchResult"
            assert result.ok, f"the launch failed: {result.detail}"
            assert isinstance(result.job_id, str) and result.job_id, "a successful launch names its job"
            self._no_secret(result)
            provider = self.make_provider(context)
            if provider is None:
                return
            for provider in self.closing(provider) if provider is not launcher else [provider]:
                jobs = {j.job_id: j for j in provider.jobs(since - 60.0)}
                assert result.job_id in jobs, "the provider lists the launched job"
                job = jobs[result.job_id]
                check_job(job, since - 60.0)
                assert job.pool == pool.name, "the job's pool label comes back"
                if udid:
                    assert job.udid == udid, "the job's phone label comes back"
                elif job.udid and pool.targeting == "group":
                    assert job.udid in pool.udids, "the cloud placed a group launch on one of the group's phones"

    def test_a_pinned_launch_names_its_job(self, contract_context: PluginContext) -> None:
        self._launch_and_find(contract_context, "pinned")

    def test_a_launch_that_names_no_phone_is_accepted_for_a_selector_pool(self, contract_context: PluginContext) -> None:
        self._launch_and_find(contract_context, "selector")

    def test_a_launch_that_names_no_phone_is_accepted_for_a_group_pool(self, contract_context: PluginContext) -> None:
        self._launch_and_find(contract_context, "group")

    def test_a_failed_submission_is_a_result_not_an_exception(self, contract_context: PluginContext) -> None:
        launcher = self.make_failing_launcher(contract_context)
        if launcher is None:
            pytest.skip("no make_failing_launcher")
        pool, udid = self._pool(contract_context, "pinned")
        for launcher in self.closing(launcher):
            result = self.timed(contract_context, lambda: launcher.launch(self.request(contract_context, pool, udid)))
            assert isinstance(result, LaunchResult) and not result.ok
            assert result.detail.strip(), "a failure says why"
            assert "\n" not in result.detail.strip(), "a failure's detail is one line"
            self._no_secret(result)

    def test_render_starts_nothing(self, contract_context: PluginContext, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
        launcher = self.make_launcher(contract_context)
        render = getattr(launcher, "render", None)
        if not callable(render):
            pytest.skip("no render()")
        pool, udid = self._pool(contract_context, "pinned")
        started: list[Any] = []
        original = subprocess.Popen.__init__

        def record(self_: Any, *args: Any, **kwargs: Any) -> None:
            started.append(args[0] if args else kwargs.get("args"))
            original(self_, *args, **kwargs)

        provider = self.make_provider(contract_context)
        before_jobs = {j.job_id for j in provider.jobs(contract_context.clock.now() - 7200.0)} if provider else set()
        before = _files(tmp_path)
        for launcher in self.closing(launcher):
            with monkeypatch.context() as patch:
                patch.setattr(subprocess.Popen, "__init__", record)
                text = render(self.request(contract_context, pool, udid, dry_run=True))
        assert isinstance(text, str)
        assert started == [], f"render started {started}"
        assert _files(tmp_path) == before, "render left files behind"
        if provider is not None:
            for provider in self.closing(provider) if provider is not launcher else [provider]:
                after = {j.job_id for j in provider.jobs(contract_context.clock.now() - 7200.0)}
            assert after == before_jobs, "render submitted a job"

    def _no_secret(self, result: LaunchResult) -> None:
        for secret in self.secrets:
            assert secret not in result.detail and secret not in result.url and secret not in result.job_id


def _files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}
