"""Packaging: every package is listed, and a wheel installs envs/ and baselines/ under safeadapt_bench."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> tuple[dict[str, str], list[str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    mapping = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    return mapping, cfg["options"]["packages"].split()


def test_every_package_is_listed_in_setup_cfg():
    mapping, listed = _listed_packages()
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found == set(listed), f"add to setup.cfg packages: {sorted(found - set(listed))}"


def test_wheel_maps_top_level_folders_into_the_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("safeadapt_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "safeadapt_bench/envs/lift.py" in names
    assert "safeadapt_bench/baselines/__init__.py" in names
    assert not any(n.startswith(("envs/", "baselines/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "safeadapt-bench = safeadapt_bench.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
