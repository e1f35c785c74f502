"""The built wheel works on its own: shipped files inside, any working directory, two runtime deps."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("logconf-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel (not editable) and only its declared dependencies."""
    target = tmp_path_factory.mktemp("venv")
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    return python


def test_wheel_carries_both_shipped_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "logconf/vllm_logging.json" in names
    assert "logconf/skyrl_logging.yaml" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(r.split()[1].split(">")[0].lower() for r in requires) == ["python-json-logger", "pyyaml"]


def test_installed_package_works_from_any_directory(installed, tmp_path):
    def run(*args: str) -> str:
        done = subprocess.run(
            [str(installed), *args], cwd="/", capture_output=True, text=True, env={"LOGCONF_DIR": str(tmp_path)}
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    site = run("-c", "import logconf, os; print(os.path.dirname(logconf.__file__))")
    assert site.startswith(str(installed.parent.parent)) and "site-packages" in site
    vllm_path = run("-m", "logconf", "path", "vllm")
    assert vllm_path == f"{site}/vllm_logging.json" and Path(vllm_path).is_file()
    assert run("-m", "logconf", "path", "skyrl") == f"{site}/skyrl_logging.yaml"
    assert run("-m", "logconf", "check", vllm_path).splitlines()[1].strip() == f"writes {tmp_path}/vllm_rank_0.log"
    run("-c", "import logconf, logging; logconf.apply(); logging.getLogger('skyrl.x').info('from the wheel')")
    assert "from the wheel" in (tmp_path / "skyrl_rank_0.log").read_text()


def test_import_logconf_pulls_in_neither_ray_nor_vllm(installed):
    code = (
        "import sys, json, logconf\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'vllm', 'loguru', 'torch'))))"
    )
    done = subprocess.run([str(installed), "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_the_wheel_installs_the_auto_startup_file_at_the_top_of_site_packages(wheel, installed, tmp_path):
    """logconf_auto.pth sits beside the package; LOGCONF_AUTO=1 applies logconf in a process that imports a framework."""
    assert "logconf_auto.pth" in zipfile.ZipFile(wheel).namelist()
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "mytrainer.py").write_text("")
    code = (
        "import logging, os, mytrainer\nlogging.getLogger('skyrl.x').info('auto from the wheel')\n"
        "print(os.environ['VLLM_LOGGING_CONFIG_PATH'])"
    )
    env = {"LOGCONF_DIR": str(tmp_path), "LOGCONF_AUTO": "1", "LOGCONF_AUTO_FRAMEWORKS": "mytrainer"}
    env["PYTHONPATH"] = str(tmp_path / "mods")
    done = subprocess.run([str(installed), "-c", code], cwd="/", capture_output=True, text=True, env=env, check=True)
    site = Path(done.stdout.strip()).parent
    assert (site.parent / "logconf_auto.pth").is_file() and site.name == "logconf"
    assert "auto from the wheel" in (tmp_path / "skyrl_rank_0.log").read_text()
    plain = subprocess.run([str(installed), "-c", "import sys; print('logconf' in sys.modules)"], capture_output=True, text=True)
    assert plain.stdout == "False\n"


def test_the_installed_wheel_writes_a_report_page_and_names_its_lnav_format(installed, tmp_path):
    """The page's template and the lnav format are package data: `logconf report` and `logconf path lnav` work
    from the wheel, in any directory."""
    env = {"LOGCONF_DIR": str(tmp_path / "logs")}
    log = "import logconf, logging; logconf.apply(); logging.getLogger('skyrl.x').warning('from the wheel')"
    subprocess.run([str(installed), "-c", log], cwd="/", env=env, check=True, capture_output=True)
    out = tmp_path / "run.html"
    done = subprocess.run([str(installed), "-m", "logconf", "report", str(tmp_path / "logs"), "-o", str(out)], cwd="/",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "from the wheel" in out.read_text(encoding="utf-8")
    lnav = subprocess.run([str(installed), "-m", "logconf", "path", "lnav"], cwd="/", capture_output=True, text=True, check=True)
    site = Path(lnav.stdout.strip()).parent
    assert lnav.stdout.strip() == f"{site}/lnav_format.json" and "site-packages" in str(site)
    assert set(json.loads(Path(lnav.stdout.strip()).read_text())) == {"$schema", "logconf_log", "logconf_json"}
