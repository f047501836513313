"""The built-in simulated fleet: a queue source, a device provider and a launcher, all named ``sim``.

They share one :class:`~provisioner.sim.fleet.Fleet`, so a newcomer can run the real loop offline with no
credentials, and tests and benchmarks can drive it on a virtual clock.
"""

from .config import FleetConfig, QueueSpec
from .fleet import Fleet

__all__ = ["Fleet", "FleetConfig", "QueueSpec"]
