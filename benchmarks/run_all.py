"""Run every benchmark with its default sizes and print the figures (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

for script in ("spine.py", "crm_sync.py", "sf_api_calls.py", "vtiger_sessions.py"):
    print(f"\n== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
