"""A judge run's settings as dataclasses: one definition for flags, YAML keys and checks.

`JudgeOptions` holds what every judge kind takes (samples, budget, retries, cache...);
each kind subclasses it with its own fields (`FaithfulnessOptions`, `ModerationOptions`).
From one class come

* the ``opinbench judge KIND`` flags (`add_flags`: field ``max_tokens_budget`` is
  ``--max-tokens-budget``; a bool is a bare flag; a list is a repeatable flag), read back
  by `from_namespace`;
* the keys a leaderboard definition's pinned judge may set under ``settings:``
  (`from_mapping`, the same names with underscores), checked the same way;
* the checks (`check`): a value below a field's ``min`` or outside its ``choices`` is a
  `ConfigError` naming the setting, whichever way it came.

The style is TRL's ``ScriptArguments`` + ``TrlParser``; written here in a few lines rather
than through ``transformers.HfArgumentParser``, whose bool fields take a value
(``--no-control true``) and which would load transformers to parse a judge's flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError


def opt(default: Any = None, help: str = "", **meta: Any) -> Any:  # noqa: A002 (argparse's word)
    """A field with its flag's help; ``meta``: ``min``, ``choices``, ``metavar``, ``required``."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> Any:
    """``int | None`` -> int, ``list[str]`` -> list, ``Path`` -> Path."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0])
    return typing.get_origin(hint) or hint


def _at_least(low: int, kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


@dataclass
class JudgeOptions:
    """What every judge kind takes (see the module docstring)."""

    samples: list[str] = opt(
        [], "lm-eval output folder (samples_*.jsonl found recursively) or one samples JSONL; "
        "repeatable", metavar="PATH", required=True,
    )
    limit: int | None = opt(None, "at most N documents per task (all their repeats)", min=1)
    seed: int = opt(0, "which documents --limit draws, and the control draw (default 0)")
    output_dir: Path | None = opt(
        None, "where results go (default: beside each samples file, i.e. in the lm-eval run folder)"
    )
    base_url: str | None = opt(
        None, "endpoint of the provider (an OpenAI-compatible server, a proxy, a test server)"
    )
    api_key_env: str | None = opt(
        None, "environment variable holding the API key (default ANTHROPIC_API_KEY / "
        "OPENAI_API_KEY); the key itself is never a flag", metavar="VAR",
    )
    max_requests: int | None = opt(
        None, "budget: at most N HTTP requests, retries included", metavar="N", min=0
    )
    max_tokens_budget: int | None = opt(
        None, "budget: stop sending once N tokens (input + output, as the API reports them) are "
        "spent; requests in flight may add up to concurrency-1 replies; a reply without token "
        "usage spends the budget (its cost is unknown)", metavar="N", min=1,
    )
    max_empty_retries: int = opt(
        2, "ask again after an empty reply at most N times, then record it as failed (default 2)",
        metavar="N", min=0,
    )
    concurrency: int = opt(4, "requests in flight (default 4; local: 1)", min=1)
    max_retries: int = opt(5, "retries per request on 429/5xx/timeouts (default 5)", min=0)
    backoff: float = opt(1.0, "first retry wait in seconds, doubled each time (default 1)", min=0)
    max_backoff: float = opt(60.0, "cap on one backoff wait (default 60 s)", min=0)
    max_retry_after: float = opt(300.0, "cap on a server's Retry-After (default 300 s)", min=0)
    timeout: float = opt(60.0, "seconds per request before it is retried (default 60)", min=0)
    cache: Path | None = opt(
        None, "reply cache (sqlite; default <cache root>/judge_cache.sqlite)"
    )
    no_cache: bool = opt(False, "keep replies in memory only (every run pays again)")
    max_tokens: int | None = opt(None, "override the settings file's max_tokens", min=1)
    temperature: float | None = opt(
        None, "override the settings file's temperature (not sent to Anthropic)"
    )
    judges_dir: Path | None = opt(
        None, "folder of judge templates and settings (default: judges/)"
    )
    no_progress: bool = opt(False, "no progress bar")
    mode: str = opt(
        "live", "batch: the Anthropic / OpenAI batch API (half price, done within 24 h; a rerun "
        "resumes the batches already submitted); default live", choices=("live", "batch"),
    )
    poll_interval: float = opt(30.0, "batch mode: seconds between polls", min=0)

    def __post_init__(self) -> None:
        self.check()

    # -- one definition, three readers

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field, in the fields' order."""
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind, meta = _base_type(hints[f.name]), f.metadata
            kw: dict[str, Any] = {"help": meta.get("help")}
            if kind is bool:
                kw["action"] = "store_true"
            else:
                if kind is list:
                    kw.update(action="append", required=bool(meta.get("required")))
                else:
                    kw["default"] = f.default
                    low = meta.get("min")
                    kw["type"] = kind if low is None else _at_least(low, kind)
                for key in ("choices", "metavar"):
                    if key in meta:
                        kw[key] = meta[key]
            parser.add_argument(_flag(f.name), **kw)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> JudgeOptions:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> JudgeOptions:
        """Options from YAML keys (``max_tokens: 512``, ``no_control: true``).

        Raises:
            ConfigError: an unknown key or a value of the wrong type, named with ``where``.
        """
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(
                    f"{where}: unknown judge setting {key!r} (known: {', '.join(sorted(names))})"
                )
            values[key] = _coerce(value, _base_type(hints[key]), f"{where}: {key}")
        try:
            return cls(**values)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    def check(self) -> None:
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None or isinstance(value, bool):
                continue
            if "min" in meta and isinstance(value, (int, float)) and value < meta["min"]:
                raise ConfigError(f"{f.name} must be at least {meta['min']}, not {value}")
            if "choices" in meta and value not in meta["choices"]:
                raise ConfigError(
                    f"{f.name} must be one of {', '.join(meta['choices'])}, not {value!r}"
                )


def _coerce(value: Any, kind: Any, what: str) -> Any:
    if value is None:
        return None
    if kind is list:
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if kind is Path:
        return Path(str(value))
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(kind, True)
    if not ok:
        wanted = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
        raise ConfigError(f"{what} must be {wanted[kind]}, not {value!r}")
    return float(value) if kind is float else value


@dataclass
class FaithfulnessOptions(JudgeOptions):
    """``opinbench judge faithfulness``: the judge, and its control set."""

    judge: str | None = opt(
        None, "anthropic:M, openai:M, openai-compat:M (with --base-url), local:smollm2 or "
        "local:/hf/folder (default: judges/faithfulness_*.yaml)", metavar="PROVIDER:MODEL",
    )
    control_data: Path | None = opt(
        None, "Value Kaleidoscope folder for the judge control set (default: the data registry's)"
    )
    control_limit: int | None = opt(
        None, "control records (default: judges/faithfulness_vk.yaml)"
    )
    no_control: bool = opt(False, "skip the judge calibration (not recommended)")


@dataclass
class ModerationOptions(JudgeOptions):
    """``opinbench judge moderation``: the moderator and how it is prompted."""

    moderator: str | None = opt(
        None, "openai:omni-moderation-latest (endpoint), openai-compat:<Llama Guard> --base-url "
        "URL, local:... (default: judges/moderation.yaml)", metavar="PROVIDER:MODEL",
    )
    moderator_prompt: str | None = opt(
        None, "chat moderators: native (Llama Guard's own chat template) or template "
        "(judges/moderation_llama_guard.j2); default from judges/moderation.yaml",
        choices=("auto", "native", "template"),
    )
    show_flagged: int = opt(20, "print the first N flagged items", metavar="N", min=0)
