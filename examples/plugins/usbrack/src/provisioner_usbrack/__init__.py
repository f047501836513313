"""provisioner-usbrack: a third-party example plugin. Phones on a local USB rack, found with ``adb devices -l``;
each launch starts the pool's worker for one phone as a local process, watched by the plugin's own supervisor."""

from .rack import UsbRack

__all__ = ["UsbRack"]
