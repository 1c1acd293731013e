"""What `pip install` of a built wheel gets: the built-in templates travel with the code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from bot.notify.review import ReviewRenderer
from bot.notify.templates import BUILTIN_DIR, Renderer

ROOT = Path(__file__).resolve().parents[1]


def test_built_in_templates_are_the_checkouts_templates() -> None:
    assert BUILTIN_DIR.resolve() == (ROOT / "templates").resolve()
    assert Renderer().check() == []
    assert ReviewRenderer().check() == []


def test_the_wheel_carries_every_template(tmp_path: Path) -> None:
    # Built from a copy, away from what earlier builds left in the checkout (build/, *.egg-info), which
    # would hide a template the configuration no longer packs.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "bot", source / "bot", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates", source / "templates")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(wheels),
        ".",
    ]
    built = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("cadence_scrum_bot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*") if p.is_file())
    assert len(templates) >= 10
    assert [t for t in templates if f"bot/{t}" not in names] == []
    assert "bot/notify/templates.py" in names
