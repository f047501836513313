"""The built-in simulated fleet: a queue source, a device provider and a launcher, all named ``sim``.

They share one :class:`~provisioner.sim.fleet.Fleet`, so a newcomer can run the real loop offline with no
credentials, and tests and benchmarks can drive it on a virtual clock.
"""

from .fleet import Fleet, FleetConfig, QueueSpec

__all__ = ["Fleet", "FleetConfig", "QueueSpec"]
