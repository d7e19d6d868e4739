"""Device lint: tensor factories without ``device=`` in the step and epoch paths.

A tensor made by ``torch.tensor(...)``, ``torch.zeros(...)``, ... without ``device=`` lives on
the CPU whatever the run's device, so beside CUDA tensors it breaks the run only on a GPU (review
F1: a CPU ``torch.tensor`` stacked with CUDA epoch sums; a CPU tensor all-reduced over NCCL). This
check finds such calls on this CPU-only machine by reading the source (``ast``): every call of a
factory in ``FACTORIES`` through the ``torch`` module, in the files of ``PATHS``, that passes no
``device=`` (nor ``**kwargs``, which may carry one) is a finding, unless

- the tensor is placed right after: the receiver of a method chain ending in ``.to(...)`` /
  ``.cuda()``, or bound to a name that the same function moves so (``w = torch.empty(...)``, ...,
  ``w.to(device)``), or wrapped in ``nn.Parameter(...)`` (a module's parameter moves with it);
- it goes to the host: the receiver of ``.item()`` / ``.tolist()``, the argument of ``int`` /
  ``float`` / ``bool``;
- a line of the call carries a waiver comment ``# cpu: <reason>`` (a tensor that must be on the
  CPU, with the reason why).

``python tests/device_lint.py [path ...]`` prints every finding and exits 1 if there is one;
``tests/test_device_lint.py`` runs it over the tree and against a planted mistake.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the code a training step or an epoch runs: the core's loop and its collaborators, the rule kit,
# every plugin, the network's layers
CORE_FILES = ("loop", "step", "credit", "evaluation", "distributed", "plugin_host", "trainer", "step_modes")
PATHS = (*(f"core/{name}.py" for name in CORE_FILES), "core/rulekit", "plugins", "architectures")
FACTORIES = frozenset(
    "tensor as_tensor scalar_tensor zeros ones full empty empty_strided arange range linspace logspace eye "
    "rand randn randint randperm normal bernoulli tril_indices triu_indices".split()
)
MOVES = ("to", "cuda")
WRAPS = ("Parameter", "int", "float", "bool")  # a module's parameter (moves with it); a host value
WAIVER = re.compile(r"#\s*cpu:\s*\S")  # "# cpu: <reason>", the reason not empty


def _factory_name(call: ast.Call) -> str | None:
    """``name`` when ``call`` is ``torch.name(...)`` with ``name`` a factory."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "torch":
        return func.attr if func.attr in FACTORIES else None
    return None


def _places_itself(call: ast.Call) -> bool:
    """The call names its device (``device=``) or may (``**kwargs``)."""
    return any(k.arg in ("device", None) for k in call.keywords)


def _called_name(call: ast.Call) -> str:
    """``f`` of ``f(...)`` or ``x.f(...)``."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _root_name(node: ast.AST) -> str | None:
    """``w`` of ``w``, ``w.a(...).b[...]``: the name a chain of calls, attributes and indexing starts at."""
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _moved_names(scope: ast.AST) -> set[str]:
    """Names that ``scope`` moves with ``name....to(...)`` / ``.cuda()``."""
    moves = (n for n in ast.walk(scope) if isinstance(n, ast.Call) and _called_name(n) in MOVES)
    return {name for n in moves if isinstance(n.func, ast.Attribute) and (name := _root_name(n.func.value))}


def _placed(call: ast.Call, parents: dict) -> bool:
    """The factory's tensor is moved, made a module's parameter, or read to the host right after."""
    node = call
    while isinstance(parents.get(node), ast.Attribute) and isinstance(parents.get(parents[node]), ast.Call):
        node = parents[parents[node]]  # node.method(...): follow the chain
        if _called_name(node) in MOVES or _called_name(node) in ("item", "tolist"):
            return True
    outer = parents.get(node)
    if isinstance(outer, ast.Call) and node in outer.args and _called_name(outer) in WRAPS:
        return True
    if isinstance(outer, ast.Call) and outer.args[:1] == [node] and _called_name(outer).endswith("_"):
        node, outer = outer, parents.get(outer)  # an in-place initialiser returns its argument
    if not isinstance(outer, ast.Assign) or outer.value is not node:  # the tensor is bound to a name
        return False
    scope = parents.get(outer)
    while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
        scope = parents.get(scope)
    targets = {t.id for t in outer.targets if isinstance(t, ast.Name)}
    return scope is not None and bool(targets & _moved_names(scope))


def findings_in(path: Path, shown: str) -> list[str]:
    """``shown:line: torch.name(...) has no device= ...`` for each unwaived factory call in ``path``."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text, str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset)):
        name = _factory_name(node)
        if name is None or _places_itself(node) or _placed(node, parents):
            continue
        end = node.end_lineno or node.lineno
        if any(WAIVER.search(lines[i - 1]) for i in range(node.lineno, end + 1)):
            continue
        found.append(
            f"{shown}:{node.lineno}: torch.{name}(...) has no device=, so it is made on the CPU whatever the run's "
            f"device; pass device=... or waive it with '# cpu: <reason>'"
        )
    return found


def findings(paths=PATHS, root: Path = ROOT) -> list[str]:
    """Every finding in ``paths`` (files or folders, relative to ``root``), in path and line order."""
    found = []
    for entry in paths:
        target = root / entry
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            rel = path.relative_to(root) if path.is_relative_to(root) else path
            if any(part.startswith(".") or part in ("build", "__pycache__", "tests") for part in rel.parts[1:]):
                continue
            found += findings_in(path, str(rel))
    return found


if __name__ == "__main__":
    bad = findings(sys.argv[1:] or PATHS)
    print("\n".join(bad) if bad else "every tensor factory in the step and epoch paths names its device")
    sys.exit(1 if bad else 0)
