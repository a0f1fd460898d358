"""`python -m orchestration run JOB`, the process `relay run` and `relay demo` start."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_an_unknown_job_is_refused_naming_the_jobs():
    done = subprocess.run([sys.executable, "-m", "orchestration", "run", "weekly_everything"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "unknown job 'weekly_everything'; the jobs are daily_full, frequent_path" in done.stderr
    assert "Traceback" not in done.stderr
