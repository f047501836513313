"""Taskcluster queue source for provisioner: pending/claimed counts per queue and quarantined workers."""

__version__ = "0.1.0"
