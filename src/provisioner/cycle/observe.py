"""Observe: what the queue sources and device providers said this cycle, validated once.

Owns the remote reads of a cycle and what survives them: every queue's counts and workers (with quarantine),
every provider's phones and live jobs, one line per read that failed (*unknown*, never zero), and the names
already found valid. A phone or job whose name may not become a label, a path or an argument is dropped here, so
that no other room checks a name again. May not touch: the ledger, the plan, the launchers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from loguru import logger

from ..config import Settings
from ..model import Phone, PhoneState, Pool, QueueCounts, RemoteJob, Worker
from ..planner import Observation
from ..plugins import Runtime
from ..types import RemoteError
from ..values import name_problem, one_line

GOOD_NAMES_MAX = 1_000_000  # valid names remembered, so that each is checked once
_UDID, _POOL = attrgetter("udid"), attrgetter("pool")
BUSIEST = {PhoneState.IDLE: 0, PhoneState.UNAVAILABLE: 1, PhoneState.BUSY: 2}


class Reader:
    """One cycle's remote reads, validated: ``observe(now)``; ``reads`` says how each went (for the cycle report)."""

    def __init__(self, settings: Settings, runtime: Runtime, pools: Mapping[str, Pool]) -> None:
        self.settings, self.runtime = settings, runtime
        self.reads: dict[str, str] = {}
        self._first: tuple[float, float] | None = None  # (wall, monotonic) at the first observation
        self._warned: set[tuple[str, str]] = set()
        self._good_names: set[str] = set()  # names from providers already found valid
        by_source: dict[str, dict[str, None]] = defaultdict(dict)  # source -> its queues, in the pools' order
        for pool in pools.values():
            by_source[pool.queue_source][pool.queue] = None
        self._sources = ({s: list(qs) for s, qs in by_source.items()},
                         sorted({p.device_provider for p in pools.values()}))

    def observe(self, now: float, mono: float | None = None) -> tuple[
            Observation, list[str], dict[str, list[RemoteJob] | None]]:
        unknown: list[str] = []
        self.reads = reads = {}  # this observation's reads, for the cycle report
        queues_by_source, providers = self._sources
        counts: dict[str, Any] = {}
        quarantined: dict[str, Any] = {}
        workers: dict[str, Sequence[Worker] | None] = {}
        for source_name, queues in queues_by_source.items():
            source = self.runtime.queue_source(source_name)
            counts.update(_guard(lambda: source.counts(queues), f"{source_name}: counts", unknown, reads, QueueCounts) or {})
            answer = _guard(lambda: source.workers(queues), f"{source_name}: workers", unknown, reads, Sequence) or {}
            well_typed = _all_of(chain.from_iterable(filter(None, answer.values())), Worker)  # one pass, all queues
            for q, listed in answer.items():
                if listed is not None and not well_typed and not _all_of(listed, Worker):
                    unknown.append(f"{source_name}: workers: plugin error: {q}: not a list of Worker")
                    reads[f"{source_name}: workers"] = "plugin_error"
                    listed = None
                workers[q] = listed
                quarantined[q] = None if listed is None else quarantine_of(listed, now)
            for q in queues:
                workers.setdefault(q, None)
                counts.setdefault(q, None)
                quarantined.setdefault(q, None)
        phones: dict[str, Any] = {}
        jobs: dict[str, list[RemoteJob] | None] = {}
        since = self.window(now, mono) - self.settings.jobs_lookback_seconds
        for name in providers:
            provider = self.runtime.device_provider(name)
            phones[name] = _guard(lambda: list(provider.phones()), f"{name}: phones", unknown, reads, Phone)
            if phones[name] is not None:
                udids = set(map(_UDID, phones[name]))  # the common cycle: every UDID once, each seen before
                if len(udids) != len(phones[name]) or not self._good_names.issuperset(udids):
                    phones[name] = self._dedupe(name, self._named(name, "phone", phones[name], _UDID))
            jobs[name] = _guard(lambda: list(provider.jobs(since)), f"{name}: jobs", unknown, reads, RemoteJob)
            if jobs[name] is not None:  # a job's pool and phone come from its labels: foreign text is skipped
                jobs[name] = self._named(name, "job", self._named(name, "job", jobs[name], _POOL), _UDID,
                                         optional=True)  # a job not placed on a phone names none
            if jobs[name] is None:  # which phones our jobs hold is unknown: so is which phones are free
                phones[name] = None
        obs = Observation(counts=counts, quarantined=quarantined, phones=phones)
        return obs, unknown, jobs, workers

    def window(self, now: float, mono: float | None) -> float:
        """Where the providers' job lists end, as their timestamps go: the wall time, or, should the wall clock
        have stepped ahead since the first observation, the time the monotonic clock has run since then, whichever
        is earlier. The list reaches back from there: a step forward of the host's clock (which the cloud's does
        not follow) hides none of our live jobs, at the cost of a longer list while the clocks disagree."""
        if mono is None:
            return now
        if self._first is None:
            self._first = (now, mono)
        return min(now, self.wall_of(mono))

    def wall_of(self, mono: float) -> float:
        """The wall time at the monotonic time ``mono``, as the wall clock ran at the first observation (as the
        cloud's clock runs, unless the host's was wrong then): ``mono`` itself before any."""
        return mono if self._first is None else self._first[0] + (mono - self._first[1])

    def _named(self, provider: str, what: str, items: list[Any], name_of: Callable[[Any], str],
               optional: bool = False) -> list[Any]:
        """``items`` without those whose name (``name_of``) may not become a label, a path or an argument (an
        empty name is one, unless ``optional``: then it is no name). Each name is checked once; a cycle whose
        names were all seen before costs one pass."""
        good = self._good_names
        if good.issuperset(filter(None, map(name_of, items)) if optional else map(name_of, items)):
            return items
        return [i for i in items if (optional and not name_of(i)) or self._valid(provider, what, name_of(i))]

    def _valid(self, provider: str, what: str, name: str) -> bool:
        """Whether a name from a provider (a UDID, a job's labels) may become a label, a path or an argument;
        one warning per bad name (escaped: a newline in it forges no log line)."""
        if name in self._good_names:
            return True
        problem = name_problem(name, "UDID" if what == "phone" else "label")
        if problem is None:
            if len(self._good_names) < GOOD_NAMES_MAX:
                self._good_names.add(name)
            return True
        if (provider, name) not in self._warned:
            self._warned.add((provider, name))
            logger.warning("{}: {} skipped: {}", provider, what, one_line(problem))
        return False

    def _dedupe(self, provider: str, phones: list[Phone]) -> list[Phone]:
        """One phone per UDID: a phone listed twice takes its busiest state, and is warned of once."""
        if len(set(map(_UDID, phones))) == len(phones):
            return phones
        kept: dict[str, Phone] = {}
        for phone in phones:
            seen = kept.get(phone.udid)
            if seen is None or BUSIEST[phone.state] > BUSIEST[seen.state]:
                kept[phone.udid] = phone
            if seen is not None and (provider, phone.udid) not in self._warned:
                self._warned.add((provider, phone.udid))
                logger.warning("{}: phone {} is listed more than once; taken as {}", provider, phone.udid,
                               kept[phone.udid].state.value)
        return list(kept.values())


def quarantine_of(workers: Sequence[Worker], now: float) -> frozenset[str]:
    """The ids of the workers quarantined at ``now``."""
    return frozenset(w.worker_id for w in workers if w.quarantined_until is not None and w.quarantined_until > now)


def _all_of(values: Any, kind: type, none: bool = False) -> bool:
    """Whether every value is a ``kind`` (or None, with ``none``): one pass over their types, not their values."""
    types = set(map(type, values))
    types.discard(kind)
    if none:
        types.discard(type(None))
    return all(issubclass(t, kind) for t in types)


def _guard(call: Callable[[], Any], what: str, unknown: list[str], reads: dict[str, str], kind: type) -> Any:
    """Run one remote read; on failure record one line and return None (unknown), never an empty answer.

    The answer is a list of ``kind`` or a mapping to ``kind`` (or None); anything else is a plugin error."""
    try:
        answer = call()
        mapping = isinstance(answer, Mapping)
        values = answer.values() if mapping else answer
        bad = () if _all_of(values, kind, none=mapping) else [
            v for v in values if not (isinstance(v, kind) or (v is None and mapping))]
        if bad:
            raise TypeError(f"answered {type(bad[0]).__name__}, not {kind.__name__}")
    except RemoteError as exc:
        unknown.append(f"{what}: {exc}")
        reads[what] = "error"
    except Exception as exc:  # noqa: BLE001 - a plugin bug makes the data unknown, not the loop dead
        unknown.append(f"{what}: plugin error {type(exc).__name__}: {exc}".splitlines()[0])
        reads[what] = "plugin_error"
    else:
        missing = [str(k) for k, v in answer.items() if v is None] if isinstance(answer, Mapping) else []
        if missing:  # why: the plugin's own warning line
            unknown.append(f"{what}: {len(missing)} of {len(answer)} unknown: {', '.join(missing[:5])}"[:300])
        reads[what] = "partial" if missing else "ok"
        return answer
    return None
