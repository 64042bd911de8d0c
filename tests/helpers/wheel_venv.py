"""A fresh virtual environment holding opinbench as a user installs it, offline.

`make` builds this checkout's wheel (``pip wheel --no-build-isolation``: hatchling comes from
the ``test`` extra, nothing is downloaded) and installs it, or installs the checkout editable,
or nothing, into a new venv. The venv sees this interpreter's packages (torch, lm-eval, ...)
through a plain path line, not ``--system-site-packages``: under CI this interpreter is itself
a venv, whose packages a nested ``--system-site-packages`` venv would not see, and a plain path
line runs none of that folder's ``.pth`` files, so an opinbench installed there (the editable
install of this or another checkout) is neither activated nor shadows the venv's own, which
comes first on ``sys.path``. lm-eval's console script is written into the venv from lm-eval's
own ``console_scripts`` entry point, as pip writes it.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SWITCH = "OPINBENCH_LM_EVAL_PLUGIN"


@dataclass(frozen=True)
class Venv:
    root: Path
    site_packages: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def env(self, *, switch_off: bool = False, data: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", SWITCH, "VIRTUAL_ENV"}}
        env |= {"PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false"}
        if switch_off:
            env[SWITCH] = "0"
        if data is not None:
            env["OPINBENCH_DATA_DIR"] = str(data)
        return env

    def run(self, argv: list[str], *, switch_off: bool = False, data: Path | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        # cwd: the venv, so that this checkout is not importable from the working directory
        return subprocess.run(argv, cwd=self.root, env=self.env(switch_off=switch_off, data=data),
                              capture_output=True, text=True, timeout=1800, check=check)

    def python(self, code: str, *, switch_off: bool = False) -> subprocess.CompletedProcess:
        proc = self.run([str(self.bin / "python"), "-c", code], switch_off=switch_off)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    def lm_eval(self, *args: str, switch_off: bool = False, data: Path | None = None) -> subprocess.CompletedProcess:
        return self.run([str(self.bin / "lm_eval"), *args], switch_off=switch_off, data=data)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                   check=True, capture_output=True, text=True, timeout=900)


def build_wheel(out: Path) -> Path:
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(REPO))
    (wheel,) = out.glob("opinbench-*.whl")
    return wheel


def _console_script(venv: Venv, dist: str, name: str) -> None:
    (ep,) = [e for e in importlib.metadata.distribution(dist).entry_points
             if e.group == "console_scripts" and e.name == name]
    module, func = ep.value.split(":")
    script = venv.bin / name
    script.write_text(f"#!{venv.bin / 'python'}\nimport sys\nfrom {module} import {func}\n"
                      f"if __name__ == '__main__':\n    sys.exit({func}())\n")
    script.chmod(0o755)


def make(folder: Path, *, editable: bool = False, install: str | None = "opinbench") -> Venv:
    """A venv in ``folder/venv`` with opinbench from the wheel (or ``editable``, or none when
    ``install`` is None), this interpreter's packages visible, and an ``lm_eval`` script."""
    root = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=300)
    site = Path(subprocess.run([str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    parent = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_parent_site_packages.pth").write_text("".join(f"{p}\n" for p in parent))
    venv = Venv(root, site)
    if install is not None:
        target = ["--editable", str(REPO)] if editable else [str(build_wheel(folder / "dist"))]
        _pip("--python", str(root / "bin" / "python"), "install", "--no-deps", "--no-build-isolation",
             "--force-reinstall", *target)
    _console_script(venv, "lm_eval", "lm_eval")
    return venv
