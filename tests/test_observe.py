"""cycle/observe.py: what the providers and queues said this cycle, validated once; a failed or
malformed read is unknown, never zero, and launches nothing."""

from __future__ import annotations

from provisioner.model import JobState, Phone, PhoneState, RemoteJob
from provisioner.types import RemoteError

from worlds import fake_loop, launches, sim_loop


def test_unknown_remote_data_means_no_launch_and_the_loop_goes_on(tmp_path, log_lines):
    calls = {"n": 0}

    def break_phones(runtime):
        provider = runtime.objects["device_provider"]["sim"]
        real = provider.phones

        def phones():
            calls["n"] += 1
            if calls["n"] == 1:
                raise RemoteError("GET devices: HTTP 503")
            if calls["n"] == 2:
                raise ValueError("garbage")
            return real()

        provider.phones = phones

    p, _, clock, _ = sim_loop(tmp_path, tweak=break_phones)
    assert p.cycle().plan.launches == ()
    assert any("unknown this cycle: sim: phones: GET devices: HTTP 503" in line for line in log_lines)
    clock.advance(30)
    assert p.cycle().plan.launches == ()
    assert any("plugin error ValueError: garbage" in line for line in log_lines)
    clock.advance(30)
    assert len(p.cycle().plan.launches) == 6  # back to normal the cycle after


def test_unknown_job_list_means_no_launch(tmp_path, log_lines):
    def break_jobs(runtime):
        def jobs(since):
            raise RemoteError("GET jobs: read timed out")

        runtime.objects["device_provider"]["sim"].jobs = jobs

    p, _, _, _ = sim_loop(tmp_path, tweak=break_jobs)
    report = p.cycle()
    assert report.plan.launches == ()
    assert {d.reason for d in report.plan.decisions} == {"phones or jobs unknown: no launch"}
    assert any("unknown this cycle: sim: jobs: GET jobs: read timed out" in line for line in log_lines)


def test_a_plugin_answering_the_wrong_types_is_unknown_not_a_crash(tmp_path, log_lines):
    def garbage(runtime):
        runtime.objects["queue_source"]["sim"].counts = lambda queues: {q: 5 for q in queues}

    p, _, _, _ = sim_loop(tmp_path, tweak=garbage)
    report = p.cycle()
    assert report.plan.launches == ()
    assert report.reads["sim: counts"] == "plugin_error"
    assert any("sim: counts: plugin error TypeError: answered int, not QueueCounts" in line for line in log_lines)


def test_a_phone_listed_twice_takes_its_busiest_state(tmp_path):
    p, fake, clock = fake_loop(tmp_path)
    fake.pending["proj/p"] = 3
    fake.phone_list = [Phone("A", state=PhoneState.BUSY), Phone("A"), Phone("B"), Phone("B")]
    assert sorted(launches(p.cycle())) == [("p", "B")]


def test_names_from_the_provider_that_cannot_be_labels_are_skipped_and_warned_once(tmp_path, log_lines):
    p, fake, clock = fake_loop(tmp_path, extra='[pools.q]\nqueue = "proj/q"\nselector = { model = "X" }\n')
    fake.pending["proj/q"] = 5
    fake.workers_of["proj/q"] = []
    bad = ["R5\nINFO forged line", "${{ .secrets.TOKEN }}", " ", "a,b", "", None]
    fake.phone_list = [Phone(u, model="X") for u in bad] + [Phone("GOOD", model="X")]
    fake.job_list = [RemoteJob("j1", "q", "x\ny", JobState.RUNNING, clock.now())]
    first, second = p.cycle(), p.cycle()
    lines = log_lines.messages("WARNING")
    assert [x.udid for x in first.plan.launches if x.pool == "q"] == ["GOOD"]
    skipped = [line for line in lines if "skipped" in line]
    assert len(skipped) == 7 and all("\n" not in line for line in skipped)
    assert second.strangers == 0
