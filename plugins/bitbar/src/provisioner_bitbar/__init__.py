"""provisioner-bitbar: a Bitbar (SmartBear BitBar) private cloud as a device provider and a launcher."""

from .cloud import Bitbar

__all__ = ["Bitbar"]
