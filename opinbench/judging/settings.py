"""Judge prompts and settings as data: the ``judges/`` folder.

Each judge is a Jinja2 template with a YAML file of settings beside it
(``faithfulness_vk.j2`` + ``faithfulness_vk.yaml``, ...); see ``judges/README.md``.
Code never hard-codes a prompt, so a prompt change is a reviewed data change
whose hash lands in every results file.

The folder is found, in this order, at ``$OPINBENCH_JUDGES_DIR``, at the top of
the source checkout (``<repo>/judges``) and inside an installed wheel
(``opinbench/_bundled/judges``, see ``pyproject.toml``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from opinbench.errors import ConfigError

JUDGES_DIR_ENV = "OPINBENCH_JUDGES_DIR"
FAMILIES = ("vk", "survey")


def judges_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder holding the judge templates and settings.

    Raises:
        ConfigError: no candidate folder exists.
    """
    pkg = Path(__file__).resolve().parents[1]  # .../opinbench
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get(JUDGES_DIR_ENV):
        candidates.append(Path(os.environ[JUDGES_DIR_ENV]))
    candidates += [pkg.parent / "judges", pkg / "_bundled" / "judges"]
    for cand in candidates:
        if (cand / "faithfulness_vk.yaml").is_file():
            return cand
    raise ConfigError(
        "judge templates not found; looked in "
        + ", ".join(str(c) for c in candidates)
        + f" (set ${JUDGES_DIR_ENV} or --judges-dir)"
    )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JudgeSettings:
    """One judge's settings file and its template.

    Attributes:
        name: file stem (``faithfulness_vk``, ``moderation``).
        path: the YAML file.
        data: its parsed contents (everything, including fields only one judge uses).
        template_name: the Jinja2 file beside it, if any.
        template_source: the template's text (hashed into the results).
    """

    name: str
    path: Path
    data: dict[str, Any]
    template_name: str | None
    template_source: str | None
    _env: jinja2.Environment = field(repr=False, compare=False, hash=False, default=None)  # type: ignore[assignment]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def version(self) -> int:
        return int(self.data.get("version", 0))

    @property
    def template_sha256(self) -> str | None:
        return None if self.template_source is None else sha256_text(self.template_source)

    def render(self, **variables: Any) -> str:
        """Render the template; an undefined variable is an error, not an empty string."""
        if self.template_name is None:
            raise ConfigError(f"{self.path}: no template configured")
        return self._env.get_template(self.template_name).render(**variables).strip() + "\n"

    def describe(self) -> dict[str, Any]:
        """What goes into a results file's ``config``: settings, template name and hash."""
        return {
            "settings_file": self.path.name,
            "settings": self.data,
            "template": self.template_name,
            "template_sha256": self.template_sha256,
        }


@cache
def _load(path: Path) -> JudgeSettings:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read judge settings: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: judge settings must be a mapping")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        # Prompts are plain text: HTML escaping would turn "don't" into "don&#39;t".
        autoescape=False,
        keep_trailing_newline=True,
    )
    template = data.get("template")
    source = None
    if template:
        tpath = path.parent / template
        if not tpath.is_file():
            raise ConfigError(f"{path}: template {template!r} not found beside it")
        source = tpath.read_text(encoding="utf-8")
    return JudgeSettings(path.stem, path, data, template, source, env)


def load_settings(name: str, directory: str | os.PathLike | None = None) -> JudgeSettings:
    """Settings ``<judges dir>/<name>.yaml`` (``name`` may also be a path to a YAML file)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return _load(p.resolve())
    path = judges_dir(directory) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no judge settings {path}")
    return _load(path.resolve())


def faithfulness_settings(family: str, directory: str | os.PathLike | None = None) -> JudgeSettings:
    """The faithfulness judge of a task family (``vk`` or ``survey``)."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown task family {family!r}; known: {', '.join(FAMILIES)}")
    return load_settings(f"faithfulness_{family}", directory)
