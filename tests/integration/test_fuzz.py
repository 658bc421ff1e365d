"""The fuzz harness's quick form: hostile HTTP events into `predlog ingest` and hostile
raw-topic records into a worker; nothing crashes and every input is counted
(bench/fuzz.py; the full run is `bench/fuzz.py --inputs 100000`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hostile_inputs_crash_nothing_and_are_all_accounted_for(stack):
    env = dict(os.environ, PREDLOG_STACK_KAFKA_PORT=stack.kafka_bootstrap.rsplit(":", 1)[1])
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "fuzz.py"), "--inputs", "1500",
                          "--seed", "7"], env=env, capture_output=True, text=True, timeout=600)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert last == "fuzz: inputs=3000 crashes=0 unaccounted=0", run.stdout
