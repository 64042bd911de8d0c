"""Plain ``lm_eval`` finds opinbench (opinbench/lm_eval_plugin.py, docs/lm_eval_plugins.md).

The hook's parts are tested in this process against stand-ins of lm-eval's modules; the whole
is tested as a user runs it, by tests/helpers/wheel_venv.py: the wheel built from this checkout,
installed in a fresh virtual environment that sees this interpreter's packages (torch, lm-eval)
but no opinbench other than the wheel's, and lm-eval's own console script run in it.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomllib

from opinbench import lm_eval_plugin as plugin
from opinbench.export import eee
from opinbench.harness import lm_models
from opinbench.paths import tasks_dir
from opinbench.runs import find_runs
from tests.conftest import REPO
from tests.helpers import eee_files, wheel_venv

# ---------------------------------------------------------------- declarations


def test_pyproject_declares_the_entry_points_lm_models_registers():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"]
    assert entry_points["lm_eval.models"] == {
        name: f"{module}:{lm_models.CLASSES[name]}" for name, module in lm_models.MODULES.items()
    }
    # lm-eval PR #4015 scans the folder of the named module: the wheel's copy of tasks_yaml/
    (value,) = entry_points["lm_eval.tasks"].values()
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert value.replace(".", "/") == wheel["tasks_yaml"]
    assert (REPO / "tasks_yaml" / "__init__.py").is_file()
    assert wheel["opinbench_lm_eval.pth"] == "opinbench_lm_eval.pth"
    assert (REPO / "opinbench_lm_eval.pth").read_text().strip().startswith("import opinbench.lm_eval_plugin;")


# ---------------------------------------------------------------- the import hook


def test_after_import_runs_the_action_once_the_module_has_executed(tmp_path, monkeypatch):
    (tmp_path / "ob_watched_mod.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    hook = plugin._AfterImport({"ob_watched_mod": lambda m: seen.append(m.VALUE + 1)})
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    module = importlib.import_module("ob_watched_mod")
    monkeypatch.delitem(sys.modules, "ob_watched_mod")
    assert seen == [42]
    assert hook not in sys.meta_path  # nothing left to watch: gone
    assert type(module.__loader__).__name__ == "SourceFileLoader"  # its own loader again
    assert module.__spec__.loader is module.__loader__


def test_a_failing_action_is_logged_and_lm_eval_goes_on(caplog):
    def broken(_module):
        raise ImportError("no opinbench here")

    with caplog.at_level(logging.WARNING, logger="opinbench.lm_eval_plugin"):
        plugin._run(broken, types.ModuleType("lm_eval.tasks.manager"))
    assert "no opinbench here" in caplog.text and plugin.ENV in caplog.text


def test_activate_does_nothing_when_switched_off(monkeypatch):
    monkeypatch.setenv(plugin.ENV, "0")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    before = list(sys.meta_path)
    plugin.activate()
    assert sys.meta_path == before


@pytest.mark.parametrize("has_import_plugins", [False, True])
def test_models_are_registered_unless_lm_eval_reads_entry_points(monkeypatch, has_import_plugins):
    calls = []
    monkeypatch.setattr(lm_models, "register", lambda: calls.append(1))
    monkeypatch.setattr(plugin, "_MODELS_ADDED", False)  # the installed hook may have run at start-up
    registry = types.ModuleType("lm_eval.api.registry")
    if has_import_plugins:
        registry.import_plugins = lambda names: None
    plugin._add_models(registry)
    assert calls == ([] if has_import_plugins else [1])


@dataclass
class _Entry:
    yaml_path: Path | None


@dataclass
class _FakeTaskManager:
    """lm-eval 0.4.13's constructor signature; indexes one entry per folder it scans."""

    verbosity: str | None = None
    include_path: object = None
    include_defaults: bool = True
    metadata: dict | None = None
    plugin_folders: tuple = ()  # what an lm-eval that reads entry points would add by itself
    scanned: list = field(default_factory=list)

    def __post_init__(self):
        paths = ["<defaults>"] if self.include_defaults else []
        paths += list(self.plugin_folders)
        paths += list(self.include_path) if isinstance(self.include_path, list) else [self.include_path] * bool(self.include_path)
        self.scanned = [str(p) for p in paths]
        self.task_index = {str(p): _Entry(None if p == "<defaults>" else Path(p) / "x.yaml") for p in paths}


def _patched(monkeypatch, plugin_folders=()):
    """A TaskManager class like lm-eval's, patched by the hook; the probe cache emptied."""
    init = _FakeTaskManager.__init__

    class TaskManager(_FakeTaskManager):
        def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
            init(self, verbosity, include_path, include_defaults, metadata, tuple(plugin_folders))

    monkeypatch.setattr(plugin, "_FOUND", {})
    plugin._add_task_folder(types.SimpleNamespace(TaskManager=TaskManager))
    return TaskManager


def test_task_folder_goes_after_the_defaults_and_before_include_path(monkeypatch, tmp_path):
    TaskManager = _patched(monkeypatch)
    folder = str(tasks_dir().resolve())
    assert TaskManager().scanned == ["<defaults>", folder]
    tm = TaskManager(include_path=str(tmp_path))
    assert tm.scanned == ["<defaults>", folder, str(tmp_path)]
    assert tm.include_path == str(tmp_path)  # as the caller gave it


def test_task_folder_is_not_added_twice_nor_without_defaults(monkeypatch):
    TaskManager = _patched(monkeypatch)
    folder = str(tasks_dir())
    assert TaskManager(include_path=folder).scanned == ["<defaults>", folder]
    assert TaskManager(include_path=[folder + "/"]).scanned == ["<defaults>", folder + "/"]
    assert TaskManager(include_defaults=False).scanned == []


def test_task_folder_is_left_to_an_lm_eval_that_finds_it_itself(monkeypatch):
    folder = str(tasks_dir().resolve())
    TaskManager = _patched(monkeypatch, plugin_folders=[folder])
    assert TaskManager().scanned == ["<defaults>", folder]  # once: lm-eval's own


# ---------------------------------------------------------------- as a user runs it

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    return wheel_venv.make(tmp_path_factory.mktemp("wheel_venv"), editable=False)


def test_wheel_install_activates_from_site_packages(venv):
    out = venv.python(
        "import json, sys, importlib.metadata as md, opinbench, opinbench.paths as p\n"
        "eps = md.distribution('opinbench').entry_points\n"
        "tasks = [e for e in eps if e.group == 'lm_eval.tasks']\n"
        "folder = tasks[0].load().__path__[0]\n"
        "import lm_eval.api.registry as r\n"
        "print(json.dumps({'file': opinbench.__file__, 'tasks': str(p.tasks_dir()), 'ep': folder,\n"
        "  'hooked': 'opinbench-hf' in r.model_registry}))"
    )
    got = json.loads(out.stdout.splitlines()[-1])
    assert Path(got["file"]).is_relative_to(venv.site_packages)  # the wheel's, not this checkout's
    assert Path(got["ep"]).resolve() == Path(got["tasks"]).resolve()
    assert got["hooked"]
    off = venv.python("import lm_eval.api.registry as r; print('opinbench-hf' in r.model_registry)", switch_off=True)
    assert off.stdout.split()[-1] == "False"


def test_editable_install_activates_from_this_checkout(tmp_path):
    env = wheel_venv.make(tmp_path, editable=True)
    out = env.python(
        "import opinbench, lm_eval.tasks.manager as m, lm_eval.api.registry as r\n"
        "from opinbench.lm_eval_plugin import _task_folder_to_add as f\n"
        "tm = m.TaskManager\n"
        "print(opinbench.__file__, f(tm, tm.__init__.__wrapped__, None, True), 'opinbench-hf' in r.model_registry)"
    )
    file, folder, registered = out.stdout.split()[-3:]
    assert Path(file) == REPO / "opinbench" / "__init__.py"
    assert Path(folder) == (REPO / "tasks_yaml").resolve()
    assert registered == "True"


@pytest.fixture(scope="module")
def smollm2():
    from opinbench.models import model_path

    return model_path("smollm2")


def _results(folder: Path) -> dict:
    (results,) = folder.glob("*/results_*.json")  # one model folder, one lm_eval call
    return json.loads(results.read_text())


@pytest.mark.parametrize("model", ["hf", lm_models.FAST_HF])
def test_stock_lm_eval_runs_opinionqa_wd(venv, shared_data, smollm2, tmp_path, model):
    proc = venv.lm_eval(
        "run", "--model", model, "--model_args", f"pretrained={smollm2},dtype=float32",
        "--tasks", "opinionqa_wd", "--limit", "2", "--output_path", str(tmp_path), "--log_samples",
        data=shared_data,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _results(tmp_path)
    wd = results["results"]["opinionqa_wd"]["wd,none"]
    assert 0.0 <= wd <= 1.0
    source = Path(results["configs"]["opinionqa_wd"]["metadata"]["config_source"])
    assert source.is_relative_to(venv.site_packages)  # the wheel's task folder
    # the real SmolLM2 run, exported in the Every Eval Ever schema, validates against it
    out = tmp_path / "eee"
    (run,) = find_runs(tmp_path)
    record, _ = eee_files.validate(eee.export_run(run, out, source=eee.Source()), out)
    assert {r["evaluation_result_id"]: r["score_details"]["score"] for r in record["evaluation_results"]}[
        "opinionqa_wd/wd,none"] == wd


def test_switched_off_lm_eval_answers_as_stock(venv, tmp_path):
    proc = venv.lm_eval("run", "--model", "hf", "--model_args", "pretrained=unused", "--tasks", "opinionqa_wd",
                        "--output_path", str(tmp_path), switch_off=True)
    assert proc.returncode != 0
    assert "opinionqa_wd" in proc.stderr and "not found" in proc.stderr.lower()


BUILTIN_TASK = "arc_easy"
DESCRIBE_BUILTINS = f"""
import json
from lm_eval.tasks import TaskManager
tm = TaskManager()
cfg = tm._factory._load_full_config(tm.task_index[{BUILTIN_TASK!r}])
name = lambda o: getattr(o, "__module__", "") + "." + getattr(o, "__qualname__", type(o).__name__)
index = {{k: [e.kind.name, str(e.yaml_path), sorted(e.tags)] for k, e in tm.task_index.items()}}
print(json.dumps({{"config": json.dumps(cfg, sort_keys=True, default=name), "index": index}}))
"""


def test_lm_eval_builtin_tasks_are_untouched(venv, tmp_path):
    bare = wheel_venv.make(tmp_path, install=None)  # opinbench not installed at all
    runs = {"installed": (venv, False), "switched off": (venv, True), "not installed": (bare, False)}
    with ThreadPoolExecutor(len(runs)) as pool:  # three processes, each indexing lm-eval's ~15k tasks
        seen = {k: pool.submit(env.python, DESCRIBE_BUILTINS, switch_off=off) for k, (env, off) in runs.items()}
        got = {k: json.loads(p.result().stdout.splitlines()[-1]) for k, p in seen.items()}
    stock = got["not installed"]
    assert "opinionqa_wd" not in stock["index"] and "opinionqa_wd" in got["installed"]["index"]
    assert got["switched off"] == stock
    assert got["installed"]["config"] == stock["config"]
    ours = {k: v for k, v in got["installed"]["index"].items() if k not in stock["index"]}
    assert all(Path(v[1]).is_relative_to(venv.site_packages / "opinbench") for v in ours.values())
    assert {k: got["installed"]["index"][k] for k in stock["index"]} == stock["index"]

