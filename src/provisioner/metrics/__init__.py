"""Prometheus metrics for provisioner: a built-in observer plugin, off unless ``[plugins.metrics] port`` is set.

Needs the optional dependency ``prometheus-client`` (``pip install 'provisioner[metrics]'``).
"""
