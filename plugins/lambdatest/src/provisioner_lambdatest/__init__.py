"""LambdaTest for provisioner: the private real-device cloud as a device provider, HyperExecute as a launcher."""

from .devices import LambdaTestDevices
from .launcher import HyperExecuteLauncher, update_cli

__version__ = "0.1.0"

__all__ = ["HyperExecuteLauncher", "LambdaTestDevices", "update_cli"]
