"""A daemon's first cycle while jobs carrying its job tag that its ledger does not hold are live.

Such jobs ("strangers") are another daemon's with the same tag on the same account (two state directories, an
unsupported setup), or those of a ledger that was lost. Every cycle respects them (each books its phone, see
``Provisioner.reconcile``); the first cycle that plans also launches nothing while any is live: a daemon started
next to another one plans its first launches from a phone list that may not show the other's newest jobs yet.
What still cannot be detected is told in deploy/DEPLOY.md ("Two daemons with one job tag").
"""

from __future__ import annotations

from dataclasses import replace

from loguru import logger

from .model import Plan


def hold_first(the_plan: Plan, strangers: int, tag: str) -> Plan:
    """``the_plan`` with no launch, each pool that would have launched saying why; one warning."""
    if not the_plan.launches:
        return the_plan
    jobs = f"{strangers} live job{'s' if strangers != 1 else ''}"
    logger.warning("first cycle: launching nothing: {} carry our job tag {!r} but no launch of ours knows them "
                   "(another daemon with this tag on this account?); launching starts next cycle, their phones "
                   "left alone. Run one daemon per account and tag", jobs, tag)
    reason = f"first cycle: {jobs} with our tag unknown to our ledger"
    return Plan((), tuple(replace(d, launches=0, warm_launches=0, reason=reason) if d.launches else d
                          for d in the_plan.decisions))
