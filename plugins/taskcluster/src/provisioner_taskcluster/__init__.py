"""Taskcluster queue source for provisioner: pending/claimed counts and the workers (claims, quarantine) per queue."""

__version__ = "0.1.0"
