"""Submissions: what can be checked without running a model, the identity of an entry, and the
ingestion of a self-reported lm-eval run.

`precheck` loads the config and tokenizer with ``transformers.AutoConfig`` / ``AutoTokenizer`` at
the revision or path (``local_files_only`` when offline, never ``trust_remote_code``), checks that
an adapter's ``adapter_config.json`` names the submitted base model, and, for an adapter made by
``opinbench train`` (it carries ``opinbench_train.json``), that its training documents hold no
test question of the leaderboard's tasks (`opinbench.train.data.check_leakage`, the guard
training itself runs). It returns the ``requests`` columns of the entry, whose ``identity`` is
(model, resolved revision or content hash of local weights, adapter hash, dtype, chat template,
leaderboard, leaderboard version).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.leaderboard.definition import Definition

ADAPTER_PATTERNS = ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.gguf", "*.json", "*.model", "*.txt", "*.jinja")
DTYPES = ("auto", "float32", "float16", "bfloat16")


def offline() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def content_hash(folder: str | Path, patterns: tuple[str, ...] = WEIGHT_PATTERNS) -> str:
    """sha256 over the files of ``folder`` that make the model (names and contents, in name order);
    sub-folders (training checkpoints, a merged copy) are not part of it."""
    folder = Path(folder)
    h = hashlib.sha256()
    found = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
    if not found:
        raise ConfigError(f"{folder}: no model files in this folder")
    for p in found:
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def parse_model(spec: str) -> tuple[str, str | None]:
    """``ORG/NAME@REV`` -> (name, rev); a folder that exists -> (its absolute path, None).

    >>> parse_model("HuggingFaceTB/SmolLM2-135M-Instruct@main")
    ('HuggingFaceTB/SmolLM2-135M-Instruct', 'main')
    """
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser().resolve()), None
    name, _, rev = spec.partition("@")
    return name, (rev or None)


def _resolve_revision(name: str, revision: str | None) -> str:
    """The commit sha of a hub model at ``revision`` (from the local cache when offline)."""
    from huggingface_hub import snapshot_download

    try:
        if offline():
            return Path(snapshot_download(name, revision=revision, local_files_only=True)).name
        from huggingface_hub import HfApi

        return str(HfApi().model_info(name, revision=revision).sha)
    except Exception as err:  # noqa: BLE001 - any hub failure is a refusal with its reason
        raise ConfigError(f"{name}@{revision or 'main'}: cannot resolve the revision: {err}") from None


def _load_checks(model: str, revision: str | None) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoTokenizer

    kw = {"revision": revision, "local_files_only": offline() or Path(model).is_dir(), "trust_remote_code": False}
    try:
        config = AutoConfig.from_pretrained(model, **kw)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ConfigError(f"{model}: needs trust_remote_code, which the leaderboard does not run") from None
        raise ConfigError(f"{model}: the config does not load: {err}") from None
    except OSError as err:
        raise ConfigError(f"{model}: the config does not load: {err}") from None
    if getattr(config, "auto_map", None):
        raise ConfigError(f"{model}: its config maps to custom code (auto_map); trust_remote_code is not allowed")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kw)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{model}: the tokenizer does not load: {err}") from None
    return config, tokenizer


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.is_dir() and pb.is_dir():
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def check_adapter(adapter: str | Path, model: str) -> dict[str, Any]:
    """An adapter folder's config; refuses one whose base model is not ``model``."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise ConfigError(f"{adapter}: not a PEFT adapter (no adapter_config.json)")
    from opinbench.data.files import read_json

    cfg = read_json(path)  # malformed JSON: a DataError naming the file, not a traceback
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a JSON object, found {type(cfg).__name__}")
    base = cfg.get("base_model_name_or_path")
    if not base or not _same_model(str(base), model):
        raise ConfigError(f"{adapter}: the adapter was made for base model {base!r}, not {model!r}")
    if not any((Path(adapter) / name).is_file() for name in ADAPTER_PATTERNS[:2]):
        raise ConfigError(f"{adapter}: the adapter has no weights ({' or '.join(ADAPTER_PATTERNS[:2])})")
    return cfg


def check_leakage(adapter: str | Path, definition: Definition) -> int:
    """For an ``opinbench train`` adapter: no training document is a test question of the
    leaderboard (raises `opinbench.train.data.LeakageError`); returns how many tasks were compared."""
    from opinbench.train.checkpoint import META_FILE, read_metadata
    from opinbench.train.data import check_leakage as guard
    from opinbench.train.data import load_task

    if not (Path(adapter) / META_FILE).is_file():
        return 0
    data = read_metadata(adapter).get("data") or {}
    if not data.get("train_task"):
        raise ConfigError(f"{adapter}: {META_FILE} does not record the training task and split")
    from lm_eval.tasks import TaskManager

    from opinbench.paths import tasks_dir

    # Which data set each task reads is in its YAML (metadata.data): only tasks on the training
    # task's data set are loaded and compared, since loading a test split costs seconds.
    index = TaskManager(include_path=str(tasks_dir()), include_defaults=False).task_index

    def data_of(task: str) -> Any:
        entry = index.get(task)
        return ((getattr(entry, "cfg", None) or {}).get("metadata") or {}).get("data")

    loaded: dict[str, list[dict[str, Any]]] = {}

    def docs(task: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        key = json.dumps([task, metadata], sort_keys=True, default=str)
        if key not in loaded:
            loaded[key] = [dict(d) for d in load_task(task, metadata).eval_docs]
        return loaded[key]

    train_docs = docs(data["train_task"], dict(data.get("train_metadata") or {}))
    train_data = data_of(data["train_task"])
    compared = 0
    for spec in definition.tasks:
        if train_data is not None and data_of(spec.name) not in (None, train_data):
            continue
        test_docs = docs(spec.name, definition.metadata)
        guard(train_docs, test_docs, eval_task=f"{spec.name} (leaderboard {definition.name})")
        compared += 1
    return compared


def display_name(model: str, config: Any, name: str | None = None) -> str:
    """The entry's public name: ``name``, else the packaged model's description, the hub id, or the
    config's ``_name_or_path`` when it is not a local path; a local path is never published."""
    from opinbench.models import PACKAGED, cache_root

    if name:
        return name
    if not Path(model).is_dir():
        return model
    for packaged in PACKAGED.values():
        if Path(model).resolve() == (cache_root() / "models" / packaged.name).resolve():
            return f"{packaged.name} ({packaged.description})"
    origin = str(getattr(config, "_name_or_path", "") or "")
    if origin and not origin.startswith(("/", ".", "~")) and not Path(origin).exists() and "/" in origin:
        return origin
    raise ConfigError(f"{model}: a local folder has no public name; give the entry's name with --name")


def check_chat_template(model: str, tokenizer: Any, chat_template: bool) -> None:
    """The worker applies the chat template unless told not to: a model without one is refused now."""
    if chat_template and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{model}: the tokenizer has no chat template; submit a base model with --no-chat-template")


def precheck(definition: Definition, model_spec: str, *, adapter: str | None = None, dtype: str = "auto",
             chat_template: bool = True, submitter: str | None = None, check_leaks: bool = True,
             name: str | None = None) -> dict[str, Any]:
    """The ``requests`` columns of a submission, after every check that needs no model run."""
    from opinbench.models import PACKAGED, resolve

    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if model_spec in PACKAGED:
        model_spec = resolve(model_spec)
    model, revision = parse_model(model_spec)
    local = Path(model).is_dir()
    config, tokenizer = _load_checks(model, revision)
    check_chat_template(model, tokenizer, chat_template)
    public = display_name(model, config, name)
    weights_hash = content_hash(model) if local else None
    resolved = None if local else _resolve_revision(model, revision)
    adapter_path, adapter_hash = None, None
    if adapter:
        adapter_path = str(Path(adapter).expanduser().resolve())
        check_adapter(adapter_path, model)
        adapter_hash = content_hash(adapter_path, ADAPTER_PATTERNS)
        if check_leaks:
            check_leakage(adapter_path, definition)
    identity = {
        "model": None if local else model, "revision": resolved, "weights_hash": weights_hash,
        "adapter_hash": adapter_hash, "dtype": dtype, "chat_template": bool(chat_template),
        "leaderboard": definition.name, "leaderboard_version": definition.version,
    }
    return {
        "leaderboard": definition.name, "leaderboard_version": definition.version, "identity": identity,
        "model": model, "revision": resolved, "weights_hash": weights_hash, "adapter": adapter_path,
        "adapter_hash": adapter_hash, "dtype": dtype, "chat_template": bool(chat_template), "submitter": submitter,
        "settings": dict(definition.settings), "definition_digest": definition.digest, "display_name": public,
    }


def _model_args(config: dict[str, Any]) -> dict[str, Any]:
    margs = config.get("model_args") or {}
    if isinstance(margs, str):  # "pretrained=x,dtype=y" as the lm_eval CLI records it
        margs = dict(p.split("=", 1) for p in margs.split(",") if "=" in p)
    return dict(margs)


def ingest_fields(definition: Definition, run_dir: str | Path, *, submitter: str | None = None,
                  name: str | None = None) -> dict[str, Any]:
    """The ``requests`` columns of a self-reported lm-eval run (what its results file says)."""
    from opinbench.runs import find_runs

    runs = find_runs(run_dir)
    if len(runs) != 1:
        raise ConfigError(f"{run_dir}: holds {len(runs)} model folders; submit the folder of one model")
    results = runs[0].results
    config = dict(results.get("config") or {})
    margs = _model_args(config)
    model = str(margs.get("pretrained") or results.get("model_name") or "unknown")
    adapter = margs.get("peft")
    dtype = str(margs.get("dtype") or "auto")
    chat = results.get("chat_template_sha") is not None
    revision = str(config.get("model_sha") or margs.get("revision") or config.get("model_revision") or "") or None
    samples_digest = hashlib.sha256(json.dumps(results.get("task_hashes") or {}, sort_keys=True).encode()).hexdigest()
    identity = {"model": model, "revision": revision, "weights_hash": None, "adapter": adapter, "dtype": dtype,
                "chat_template": chat, "leaderboard": definition.name, "leaderboard_version": definition.version,
                "self_reported_samples": samples_digest}
    return {
        "leaderboard": definition.name, "leaderboard_version": definition.version, "identity": identity,
        "model": model, "revision": revision, "adapter": adapter, "dtype": dtype, "chat_template": chat,
        "submitter": submitter, "self_reported": True, "settings": {"model_args": margs},
        "definition_digest": definition.digest,
        "display_name": name or (model if not Path(model).is_absolute() and not Path(model).is_dir() else None),
    }
