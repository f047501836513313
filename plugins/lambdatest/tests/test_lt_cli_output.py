"""The CLI's output is read and kept up to a cap (its first ``cli.HEAD`` and last ``cli.TAIL`` bytes), in memory
and on disk: 100 MB printed by each of ``launch_concurrency`` concurrent CLIs (real processes) leaves the
daemon's Python heap within a few MB of quiet CLIs'."""

from __future__ import annotations

import sys
import threading
import tracemalloc
from pathlib import Path

from provisioner_lambdatest import cli

JOB = "0f8fad5b-d9cb-469f-a165-70867728950e"
LOUD_CLI = f"""
import sys
out = sys.stdout.buffer
out.write(b"Job ID: {JOB}\\n")
block = (b"x" * 1023 + b"\\n") * 1024  # 1 MiB
for _ in range(int(sys.argv[1])):
    out.write(block)
out.write(b"last words: the reason it failed\\n")
"""
CONCURRENT = 4  # the default launch_concurrency


def run_concurrently(tmp_path: Path, megabytes: int) -> tuple[list[cli.CliRun], int]:
    """``CONCURRENT`` runs of the fake CLI side by side; their results and the heap's peak growth, in bytes."""
    script = tmp_path / "loud_cli.py"
    script.write_text(LOUD_CLI)
    results: list[cli.CliRun] = []

    def one(i: int) -> None:
        job = tmp_path / f"job{megabytes}-{i}"
        job.mkdir()
        results.append(cli.run([sys.executable, str(script), str(megabytes)], job, {}, 120, job / "cli-output.log"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return results, peak


def test_100_mb_from_every_concurrent_cli_costs_a_few_mb(tmp_path):
    quiet, quiet_peak = run_concurrently(tmp_path, 0)
    loud, loud_peak = run_concurrently(tmp_path, 100)
    assert [r.returncode for r in loud] == [0] * CONCURRENT
    # unbounded, this is 400 MB and more; kept, each CLI costs at most about 1.7 MB: its tail buffer (up to
    # 2 * TAIL before it is trimmed), its head, a read and, at the end, the kept bytes and their text twice
    assert loud_peak - quiet_peak < CONCURRENT * 2 * 1024 * 1024, (loud_peak, quiet_peak)
    for run in loud:
        assert run.job_id == JOB  # from the head
        assert run.tail(1) == "last words: the reason it failed"  # from the tail
        assert "bytes of the CLI's output not kept ...]" in run.output
    for log in tmp_path.glob("job100-*/cli-output.log"):
        assert log.stat().st_size <= cli.HEAD + cli.TAIL + 100
        assert log.stat().st_mode & 0o077 == 0
    assert all(r.output.startswith(f"Job ID: {JOB}") and "not kept" not in r.output for r in quiet)


def test_output_under_the_cap_is_kept_whole(tmp_path):
    kept = cli.Kept()
    for piece in (b"a" * 1000, b"b" * (cli.HEAD + cli.TAIL - 2000), b"c" * 1000):
        kept.add(piece)
    assert kept.text() == b"a" * 1000 + b"b" * (cli.HEAD + cli.TAIL - 2000) + b"c" * 1000
    kept.add(b"d")
    assert kept.text().endswith(b"\n[... 1 bytes of the CLI's output not kept ...]\n" + b"b" * (cli.TAIL - 1001)
                                + b"c" * 1000 + b"d")
