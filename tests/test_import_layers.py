"""No import cycle inside ``opinbench``, and no lower layer importing a higher one.

The import graph is read with `ast` from the package's source, so nothing is imported:

* **cycles** count *module-level* imports only (including those under a module-level ``if`` or
  ``try``, but not under ``if TYPE_CHECKING:``): those run when the module is imported, and a
  cycle among them is what breaks on import order. An import inside a function runs later
  and cannot deadlock the import, so it is left out of the cycle check;
* **layers** count every import, module-level or inside a function: a function-level import
  of a higher layer is still the code reaching back up (the leaderboard worker calling
  ``opinbench.cli.main`` was one).

An import of ``opinbench.a.b`` is an edge to the module ``opinbench.a.b`` (not also to the
package ``opinbench.a`` that Python initialises first: a package importing its own submodules
in ``__init__`` is not a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "opinbench"

# ARCHITECTURE.md's data flow, lowest first; a package may import its own layer and the ones
# below. The list (errors/io/paths < data < prompts < metrics < llm < judging, harness
# < runs < regress < leaderboard < commands < cli) is adjusted to what the code and
# ARCHITECTURE.md say: `runs.py` is the one reader of lm-eval folders that metrics
# (`metrics/logged_answers.py`) and judging already read, so it sits with the data readers;
# `answers.py` (the one answer extractor) and `models.py` (packaged model folders) are
# leaves; `scoring` (the metric objects) sits right above `metrics`, as its docstring says;
# analysis, train, reports and export (a run written in another schema) sit beside judging
# and harness, and so does lm_eval_plugin (the import hook that registers the harness's
# models and task folder); estimate beside regress.
LAYERS: list[set[str]] = [
    {"opinbench", "errors", "io", "paths"},
    {"data", "runs", "answers", "models"},
    {"prompts"},
    {"metrics", "evaluate_metrics"},
    {"scoring"},
    {"llm"},
    {"judging", "harness", "lm_eval_plugin", "analysis", "train", "reports", "export"},
    {"regress", "estimate"},
    {"leaderboard"},
    {"commands"},
    {"cli", "__main__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test)


def module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """The statements that run on import: the body, and the bodies of module-level if/try."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try)) and not _type_checking(node):
            for name in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, name, []))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)


def imported(node: ast.AST, known: set[str]) -> list[str]:
    """The opinbench modules an import statement names (``from a import b``: ``a.b`` if a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "opinbench"]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module.split(".")[0] != "opinbench":
            return []
        subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
        return [node.module, *subs]
    return []


def graph(*, module_level_only: bool) -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    out: dict[str, set[str]] = {}
    for name, tree in mods.items():
        nodes = module_level(tree) if module_level_only else ast.walk(tree)
        out[name] = {m for n in nodes for m in imported(n, known) if m in known and m != name}
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing
    itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "opinbench"


def test_every_package_has_a_layer():
    missing = sorted({layer(m) for m in modules()} - set(LEVEL))
    assert not missing, f"add to LAYERS in {__file__}: {missing}"


def test_no_import_cycle_at_module_level():
    assert cycles(graph(module_level_only=True)) == []


def test_no_module_imports_a_higher_layer():
    g = graph(module_level_only=False)
    upward = sorted(
        f"{a} imports {b}" for a, bs in g.items() for b in bs if LEVEL[layer(b)] > LEVEL[layer(a)]
    )
    assert upward == []


def test_the_checks_can_fail():
    """The two checks on made-up graphs: a cycle and an upward import are seen."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("import opinbench.cli\ndef f():\n    from opinbench.cli import main\n")
    assert [imported(n, {"opinbench.cli"}) for n in module_level(tree)][-1] == ["opinbench.cli"]
    inner = [imported(n, {"opinbench.cli"}) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert inner == [["opinbench.cli"]] and LEVEL[layer("opinbench.cli")] > LEVEL["leaderboard"]
