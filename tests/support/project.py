"""Where the project is: its root, the dbt project and the dbt executable of this interpreter."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DBT_DIR = ROOT / "dbt_project"
DBT = str(Path(sys.executable).with_name("dbt"))
