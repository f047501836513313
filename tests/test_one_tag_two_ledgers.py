"""Two daemons with one job tag on two SQLite state directories (unsupported; deploy/DEPLOY.md says what cannot be
detected): the one started second sees the first one's live jobs carrying our tag, which its ledger does not hold,
and launches nothing in its first cycle; from then on it respects their phones. The fleet is test_crash_rounds'
(phones and jobs in an SQLite file both daemons reach); the test blocks on the daemons' log lines, never sleeps.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from test_crash_rounds import Daemon, disk_world


def test_a_second_daemon_with_our_tag_launches_nothing_in_its_first_cycle_while_the_first_ones_jobs_live(tmp_path):
    config, site, db = disk_world(tmp_path, 1.0, postgresql=False)
    text = config.read_text()
    first = tmp_path / "first.toml"  # the pinned pool only: the selector pool's phones stay idle for the second
    first.write_text(re.sub(r"\[pools\.sel\].*?(?=\[plugins)", "", text, flags=re.S))
    second = tmp_path / "second.toml"
    second.write_text(text.replace('state_dir = "state"', 'state_dir = "state2"'))
    one = Daemon(first, site)
    two = None
    try:
        assert one.wait_for("cycle 1:"), "".join(one.seen)
        assert "launching 4" in one.seen[-1]  # no stranger in sight: its first cycle launches
        assert one.wait_for("launched job", 4), "".join(one.seen)
        two = Daemon(second, site)
        assert two.wait_for("cycle 1:"), "".join(two.seen)
        assert "launching 0" in two.seen[-1], "".join(two.seen)  # the selector pool's 3 idle phones: not yet
        assert any("first cycle: launching nothing: 4 live jobs carry our job tag 'provisioner'" in line
                   for line in two.seen), "".join(two.seen)
        assert two.wait_for("cycle 2:"), "".join(two.seen)
        assert "launching 3" in two.seen[-1], "".join(two.seen)  # then the phones no job of ours or theirs holds
        assert two.wait_for("launched job", 3), "".join(two.seen)
        for daemon in (one, two):
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(60) == 0
    finally:
        for daemon in (one, two):
            if daemon is not None and daemon.proc.poll() is None:
                daemon.kill()
    assert not any("CALLED" in line for line in two.seen[:next(i for i, line in enumerate(two.seen)
                                                             if "cycle 2:" in line)])
    assert list(db.execute("SELECT udid FROM doubles")) == []  # no phone got a second live job
    assert sorted(u for (u,) in db.execute("SELECT udid FROM jobs")) == ["P0", "P1", "P2", "P3", "S0", "S1", "S2"]
