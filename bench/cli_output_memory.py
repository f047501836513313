"""What a loud HyperExecute CLI costs the daemon: N concurrent runs (real processes) of a fake CLI printing M MB
each, read through the launcher's ``cli.run`` (which keeps the first HEAD and last TAIL bytes), against the same
runs printing nothing. Each side runs in a child process of its own, whose peak RSS is read.

    .venv/bin/python bench/cli_output_memory.py [--concurrent 4] [--megabytes 100]

Prints the Python heap's peak growth (tracemalloc) and the peak RSS of the quiet and the loud runs; the target:
the loud runs within a few MB of the quiet ones.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

LOUD_CLI = """
import sys
out = sys.stdout.buffer
block = (b"x" * 1023 + b"\\n") * 1024  # 1 MiB
for _ in range(int(sys.argv[1])):
    out.write(block)
"""


def measure(concurrent: int, megabytes: int) -> dict[str, float]:
    """In this process: ``concurrent`` runs side by side; heap peak growth, peak RSS (MB), seconds."""
    from provisioner_lambdatest import cli

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        script = root / "loud_cli.py"
        script.write_text(LOUD_CLI)

        def one(i: int) -> None:
            job = root / f"job{i}"
            job.mkdir()
            done = cli.run([sys.executable, str(script), str(megabytes)], job, {}, 600, job / "cli-output.log")
            assert done.returncode == 0

        threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrent)]
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        heap = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"heap_mb": heap / 2**20, "rss_mb": rss, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.concurrent, args.child)))
        return
    figures = {}
    for label, megabytes in (("quiet", 0), ("loud", args.megabytes)):
        done = subprocess.run([sys.executable, __file__, "--concurrent", str(args.concurrent), "--child",
                               str(megabytes)], capture_output=True, text=True, check=True)
        figures[label] = json.loads(done.stdout)
    print(f"{args.concurrent} concurrent CLIs, {args.megabytes} MB of output each:")
    for label, f in figures.items():
        print(f"  {label:5}: heap peak +{f['heap_mb']:.2f} MB, peak RSS {f['rss_mb']:.1f} MB, {f['seconds']:.2f} s")
    print(f"  loud - quiet: heap +{figures['loud']['heap_mb'] - figures['quiet']['heap_mb']:.2f} MB, "
          f"RSS +{figures['loud']['rss_mb'] - figures['quiet']['rss_mb']:.1f} MB (target: a few MB)")


if __name__ == "__main__":
    main()
