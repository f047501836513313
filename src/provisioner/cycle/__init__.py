"""The rooms of one cycle; ``provisioner.loop.Provisioner`` orders them.

- :mod:`.observe`: what the providers and queues said this cycle, validated once.
- :mod:`.accounting`: launch to job to claim: what covers a pending task, adoption after a crash.
- :mod:`.health`: which phones to leave alone (failed submissions, failing jobs, holds by hand).
- :mod:`.warmth`: each pool's warm target from the arrivals at its queue.
- :mod:`.act`: writing the plan's launches, the submitter and its pacing, a dry run's rendering.
- :mod:`.hooks`: calling the observer plugins.
"""
