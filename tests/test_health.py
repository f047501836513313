"""cycle/health.py: a phone whose submissions fail backs off, then is held (the holds by hand and for failing
jobs: test_ops_holds.py)."""

from __future__ import annotations

from provisioner.model import LaunchResult

from worlds import sim_loop


def test_failing_phone_backs_off_then_is_held(tmp_path, log_lines):
    def fail_on_sim0001(runtime):
        launcher = runtime.objects["launcher"]["sim"]
        real = launcher.launch

        def launch(request):
            if request.udid == "SIM0001":
                return LaunchResult(False, detail="CLI exited 1: yaml broken")
            return real(request)

        launcher.launch = launch

    p, rec, clock, fleet = sim_loop(tmp_path, phones=4, burst=0, unit=100, tweak=fail_on_sim0001)
    tried = []
    for _ in range(60):
        report = p.cycle()
        tried += [clock.now() for launch in report.plan.launches if launch.udid == "SIM0001"]
        clock.advance(30)
    assert [t - tried[0] for t in tried] == [0, 60, 180]  # backoff doubles: 60 s, then 120 s
    failures = [e for e in rec.events if e[0] == "failed"]
    assert len(failures) == 3  # after 3 in a row, held back for an hour
    assert all("yaml broken" in e[3] for e in failures)
    assert sum("phone SIM0001 held back" in line for line in log_lines) == 1
    assert p.held_back(clock.now()).get("SIM0001", 0) > clock.now()
