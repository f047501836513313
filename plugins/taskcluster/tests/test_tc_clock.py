"""The cycle's budget for Taskcluster calls runs on the host's monotonic clock: a step of the wall clock neither
ends it (a step forward) nor stretches it (a step back)."""

from provisioner import VirtualClock
from provisioner_taskcluster.transport import Budget


def test_a_wall_clock_step_neither_ends_nor_stretches_the_budget():
    clock = VirtualClock()
    budget = Budget(clock, 20.0)
    clock.step(86400)  # forward a day
    assert budget.remaining() == 20.0
    clock.sleep(5)
    clock.step(-3600)  # back an hour
    assert budget.remaining() == 15.0
