"""The workspaces: ``workspace.yaml`` (``make dev``, the end-to-end tests) and ``deploy/workspace.yaml``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_make_dev_workspace_loads_the_definitions(tmp_path):
    # Dagster's own loader, as dagster dev uses it: every code location in the file loads and validates.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run([dagster, "definitions", "validate", "-w", "workspace.yaml"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "medallion_pipeline.definitions" in done.stdout + done.stderr
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "dagster dev -w workspace.yaml" in makefile


def test_production_workspace_loads_the_same_location_over_grpc():
    local = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"]
    deployed = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())["load_from"]
    assert [entry["python_module"] for entry in local] == ["medallion_pipeline.definitions"]
    assert len(deployed) == 1 and set(deployed[0]) == {"grpc_server"}
    server = deployed[0]["grpc_server"]
    assert isinstance(server["port"], int) and server["host"]
    # The same location name as under dagster dev: run history and schedules carry over between the two.
    assert server["location_name"] == "medallion_pipeline.definitions"
