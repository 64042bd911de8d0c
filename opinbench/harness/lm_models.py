"""opinbench's lm-eval models, and the one way they get into lm-eval's model registry.

* ``opinbench-hf`` (`opinbench.harness.fast_hf`): lm-eval's ``hf`` scoring only the
  continuation positions;
* ``opinbench-vllm`` (`opinbench.harness.vllm_model`): lm-eval's ``vllm`` reading the
  prefix cache and sampling repeats as ``n`` completions.

lm-eval finds a model by name in its registry, filled by imports in the running process;
0.4.13 reads no ``lm_eval.models`` entry points (pyproject.toml declares them for the
releases that will). `register` names both models lazily (by ``module:Class``, nothing
imported now: no torch, no vLLM), for ``opinbench eval``, the leaderboard worker, the
benchmarks and `opinbench.lm_eval_plugin` (which calls it when a plain ``lm_eval`` imports
lm-eval's registry); ``python -m MODULE ARGS`` runs lm-eval's CLI with them registered
(`launcher`), which is also the command line those print for a user to paste: it works
with ``OPINBENCH_LM_EVAL_PLUGIN=0`` too.
"""

from __future__ import annotations

FAST_HF = "opinbench-hf"
VLLM = "opinbench-vllm"
# name -> the module whose ``python -m`` is lm-eval's CLI with the models registered, and its class
MODULES = {FAST_HF: "opinbench.harness.fast_hf", VLLM: "opinbench.harness.vllm_model"}
CLASSES = {FAST_HF: "ContinuationHFLM", VLLM: "OpinbenchVLLM"}


def register() -> None:
    """Name opinbench's models in lm-eval's model registry, lazily; calling it again changes nothing."""
    # lm-eval fills its registry with its own models (lazily too) when `lm_eval.models` is first
    # imported, and `get_model` imports it only while the registry is empty: an entry added
    # before that would hide every built-in model ("no model for this name found: hf").
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    for name, module in MODULES.items():
        if name not in model_registry:
            model_registry.register(name, target=f"{module}:{CLASSES[name]}")


def launcher(model: str | None) -> list[str]:
    """The command that runs lm-eval with ``model`` available.

    >>> launcher("opinbench-hf")
    ['python', '-m', 'opinbench.harness.fast_hf']
    >>> launcher("hf")
    ['lm_eval']
    """
    return ["python", "-m", MODULES[model]] if model in MODULES else ["lm_eval"]


def cli_main() -> None:
    """``python -m opinbench.harness.fast_hf|vllm_model ARGS``: lm-eval's CLI, opinbench's models registered."""
    from lm_eval.__main__ import cli_evaluate

    register()
    cli_evaluate()
