"""`pip install .` and `pip install -e .`: what ships, the console scripts, and the README's Python snippet run
from outside the repository. Builds run on a copy of the project, installs go into throwaway virtualenvs that
see this environment's packages (torch, transformers...) through a .pth file, so nothing here is touched."""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("ensemble", "ui", "presets", "app.py", "pyproject.toml", "requirements.txt", "README.md")


def run(*args, cwd: Path, timeout: int = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def make_venv(path: Path) -> Path:
    """A bare virtualenv whose site-packages also reads this environment's (but not its .pth files, so not an
    editable install of this project that may be there)."""
    run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    python = path / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=path).strip())
    (purelib / "_outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def pip_install(python: Path, *args) -> None:
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", *args,
        cwd=python.parent)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The project's shipped files, copied, so builds write their build/ and egg-info there."""
    dst = tmp_path_factory.mktemp("source") / "ensemble-chat"
    dst.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--no-build-isolation", "-w", out,
        source, cwd=out)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    python = make_venv(tmp_path_factory.mktemp("installed") / "venv")
    pip_install(python, wheel)
    return python


def test_the_wheel_ships_every_module_the_commands_and_the_presets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for d in ("ensemble", "ui") for p in (ROOT / d).rglob("*.py")}
    assert modules and not modules - names, sorted(modules - names)
    assert "app.py" in names and "ensemble/serve/routes.py" in names
    (entry,) = [n for n in names if n.endswith("entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    assert "ensemble = ensemble.cli:main" in scripts and "ensemble-chat = app:main" in scripts
    for preset in (ROOT / "presets").glob("*.yaml"):
        assert any(n.endswith(f"/data/share/ensemble-chat/presets/{preset.name}") for n in names), preset.name


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_runs_from_outside_the_repository(installed, fixture_dirs, tmp_path):
    code = readme_snippet()
    for offline, fixture in (("offline:smollm2-135m-instruct", "bpe-qwen2"), ("offline:gemma-3-270m", "uni-llama")):
        assert f'"{offline}"' in code  # the snippet still names the models it names today
        code = code.replace(f'"{offline}"', repr(str(fixture_dirs[fixture])))  # tiny stand-ins: seconds, not minutes
    body = re.compile(r"^(\s+)\.\.\.(.*)$", re.M)
    assert body.search(code), code
    code = "seen = []\n" + body.sub(r"\1seen.append(type(event).__name__)", code)
    code += "import ensemble\nprint(ensemble.__file__)\nprint(' '.join(sorted(set(seen))))\n"
    (tmp_path / "snippet.py").write_text(code)
    where, seen = run(installed, "snippet.py", cwd=tmp_path).strip().splitlines()[-2:]
    assert Path(where).is_relative_to(installed.parent.parent)  # the installed copy, not this checkout
    assert seen.split() == ["Finished", "Piece", "Started"]


def test_the_console_scripts_work_from_the_wheel(installed, tmp_path):
    bin_dir = installed.parent
    assert "offline-default" in run(bin_dir / "ensemble", "presets", cwd=tmp_path).split()  # the shipped presets
    assert "--api-key" in run(bin_dir / "ensemble", "serve", "--help", cwd=tmp_path)
    assert "--preset" in run(bin_dir / "ensemble-chat", "--help", cwd=tmp_path)


def test_an_editable_install_follows_the_source_including_new_subpackages(source, tmp_path):
    python = make_venv(tmp_path / "venv")
    pip_install(python, "--no-build-isolation", "-e", source)
    later = source / "ensemble" / "later"  # e.g. the planned ensemble/decode/: no reinstall needed
    later.mkdir()
    (later / "__init__.py").write_text("WHERE = __file__\n")
    out = run(python, "-c", "import ensemble.later, ensemble.serve.routes, ui, app; print(ensemble.later.WHERE)",
              cwd=tmp_path)
    assert Path(out.strip()).is_relative_to(source)
    assert "offline-default" in run(python.parent / "ensemble", "presets", cwd=tmp_path).split()
