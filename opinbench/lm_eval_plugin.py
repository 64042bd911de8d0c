"""Plain ``lm_eval`` finds opinbench: its tasks and ``--model opinbench-hf|opinbench-vllm``.

opinbench declares itself to lm-eval the way lm-eval's plugin pull requests define it
(``pyproject.toml``: the ``lm_eval.tasks`` entry point names the package that is the task
folder, ``lm_eval.models`` names the model classes). lm-eval 0.4.13 reads neither, so this
module does their job for opinbench alone, until lm-eval does (docs/lm_eval_plugins.md):

* the wheel puts ``opinbench_lm_eval.pth`` in site-packages; its one line calls `activate`
  at interpreter start, which only puts a finder first in ``sys.meta_path`` (no lm-eval, no
  opinbench module beyond this one, nothing read from disk);
* when ``lm_eval.api.registry`` is imported, `opinbench.harness.lm_models.register` names
  opinbench's models in it (lazily: no torch) unless this lm-eval reads ``lm_eval.models``
  entry points itself (it has ``import_plugins``, which came with that feature);
* when ``lm_eval.tasks.manager`` is imported, ``TaskManager`` indexes opinbench's task folder
  after lm-eval's own tasks and before ``include_path`` (so a user's folder still wins),
  unless lm-eval already found it (a plugins-only index, ``include_defaults=False``, holds
  opinbench's tasks), the caller asked for no default tasks, or the folder is already in
  ``include_path``. lm-eval's own tasks are indexed exactly as before.

``OPINBENCH_LM_EVAL_PLUGIN=0`` turns it all off (stock lm-eval). A failure here never stops
lm-eval: it is logged once, and lm-eval runs without opinbench.
"""

from __future__ import annotations

import os
import sys

# Not `typing.TYPE_CHECKING`: this module is imported at every interpreter start, and importing
# typing (with collections.abc) costs more than everything else here together.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

ENV = "OPINBENCH_LM_EVAL_PLUGIN"
_OFF = {"0", "false", "no", "off"}


def enabled(environ: Any = os.environ) -> bool:
    """Whether ``$OPINBENCH_LM_EVAL_PLUGIN`` leaves the hook on (unset, or anything but 0/false/no/off).

    >>> enabled({ENV: "0"}), enabled({ENV: " Off"}), enabled({}), enabled({ENV: "1"})
    (False, False, True, True)
    """
    return environ.get(ENV, "1").strip().lower() not in _OFF


def activate() -> None:
    """Install the import hook (the ``.pth`` line calls this at interpreter start); idempotent."""
    if not enabled() or any(isinstance(f, _AfterImport) for f in sys.meta_path):
        return
    hook = _AfterImport({"lm_eval.api.registry": _add_models, "lm_eval.api.metrics": _add_models,
                         "lm_eval.tasks.manager": _add_task_folder})
    for name in [n for n in hook.pending if n in sys.modules]:  # activated late: act now
        _run(hook.pending.pop(name), sys.modules[name])
    if hook.pending:
        sys.meta_path.insert(0, hook)


class _AfterImport:
    """A ``sys.meta_path`` finder that finds nothing itself: for the modules it watches, it asks
    the other finders and wraps the loader, so that an action runs once the module has executed.
    It leaves ``sys.meta_path`` once every watched module has been imported."""

    def __init__(self, actions: dict[str, Callable[[ModuleType], None]]) -> None:
        self.pending = dict(actions)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.pending:
            return None
        action = self.pending.pop(name)  # first: the look-up below must not come back here
        if not self.pending:
            sys.meta_path.remove(self)  # safe: the import system stops at the spec returned below
        for finder in list(sys.meta_path):
            spec = finder.find_spec(name, path, target) if finder is not self and hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenLoader(spec.loader, action)
                return spec
        return None


class _ThenLoader:
    """The module's own loader, plus an action after ``exec_module``; afterwards the module
    carries its own loader again (tracebacks, ``inspect`` and resources see nothing of this)."""

    def __init__(self, loader: Any, action: Callable[[ModuleType], None]) -> None:
        self._loader, self._action = loader, action

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _run(self._action, module)


def _run(action: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        action(module)
    except Exception as err:  # noqa: BLE001 - lm-eval must keep working without opinbench
        import logging

        logging.getLogger(__name__).warning(
            "opinbench's lm-eval hook skipped (%s: %s); set %s=0 to silence it", type(err).__name__, err, ENV
        )


_MODELS_ADDED = False


def _add_models(module: ModuleType) -> None:
    """Register opinbench's models once lm-eval's registry and metrics have both finished importing.

    Registering imports `opinbench.harness`, which wraps lm-eval's stderr look-up and so imports
    ``lm_eval.api.metrics``; lm-eval imports the registry *from* that module, so while the metrics
    module is still half-executed (no ``mean`` yet) the registration waits for it to finish."""
    global _MODELS_ADDED
    registry = module if module.__name__ == "lm_eval.api.registry" else sys.modules.get("lm_eval.api.registry")
    metrics = sys.modules.get("lm_eval.api.metrics")
    if _MODELS_ADDED or registry is None or (metrics is not None and not hasattr(metrics, "mean")):
        return
    _MODELS_ADDED = True
    if hasattr(registry, "import_plugins"):  # this lm-eval registers `lm_eval.models` entry points itself
        return
    from opinbench.harness.lm_models import register

    register()


def _add_task_folder(manager: ModuleType) -> None:
    import functools
    import inspect

    cls = manager.TaskManager
    original = cls.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        user_paths = bound.arguments.get("include_path")
        folder = _task_folder_to_add(cls, original, user_paths, bound.arguments.get("include_defaults", True))
        if folder is None:
            original(self, *args, **kwargs)
            return
        bound.arguments["include_path"] = [folder, *_as_list(user_paths)]
        original(*bound.args, **bound.kwargs)
        self.include_path = user_paths  # as the caller gave it

    cls.__init__ = __init__


def _as_list(paths: Any) -> list[Any]:
    if not paths:
        return []
    return list(paths) if isinstance(paths, (list, tuple)) else [paths]


def _task_folder_to_add(cls: type, original: Callable[..., None], user_paths: Any, include_defaults: bool) -> Any:
    """opinbench's task folder, or None when the index gets it anyway or should not have it."""
    from pathlib import Path

    from opinbench.paths import tasks_dir

    folder = tasks_dir().resolve()
    if not include_defaults or folder in {Path(p).resolve() for p in _as_list(user_paths)}:
        return None
    return None if _lm_eval_finds(cls, original, folder) else folder


_FOUND: dict[Any, bool] = {}


def _lm_eval_finds(cls: type, original: Callable[..., None], folder: Any) -> bool:
    """Whether lm-eval indexes ``folder`` by itself (a release that reads ``lm_eval.tasks`` entry
    points): a task manager without the defaults and without ``include_path`` (so only plugin
    folders; nothing at all in 0.4.13, which makes the check cheap) has an entry from it."""
    from pathlib import Path

    if (cls, folder) not in _FOUND:
        probe = cls.__new__(cls)
        original(probe, include_defaults=False)
        paths = [getattr(entry, "yaml_path", None) for entry in probe.task_index.values()]
        _FOUND[(cls, folder)] = any(p is not None and Path(p).resolve().is_relative_to(folder) for p in paths)
    return _FOUND[(cls, folder)]
