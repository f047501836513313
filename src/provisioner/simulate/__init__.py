"""``provisioner simulate``: the production loop on a virtual clock against the simulated fleet, a baseline
policy reproducing the tool that came before, and the metrics that compare them.

- :mod:`.scenario` reads a scenario file and composes it with a config's ``[provisioner]`` settings;
- :mod:`.runner` runs the real :class:`~provisioner.loop.Provisioner` (inline submitter, virtual clock);
- :mod:`.baseline` runs the old policy against the same fleet;
- :mod:`.metrics` turns a run into figures, :mod:`.report` prints them side by side and checks the targets.
"""

from .baseline import Baseline
from .metrics import Metrics, measure
from .runner import RunResult, run_baseline, run_provisioner
from .scenario import Scenario, ScenarioError, compose, load_scenario

__all__ = [
    "Baseline", "Metrics", "RunResult", "Scenario", "ScenarioError", "compose", "load_scenario", "measure",
    "run_baseline", "run_provisioner",
]
