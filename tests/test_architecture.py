"""The module map holds: imports go down ARCHITECTURE.md's layers (the import-linter contract in pyproject.toml), no
import cycle anywhere (imports inside functions and TYPE_CHECKING blocks count too), the sandbox stays apart, only
lever/client.py speaks HTTP to Lever, the web sits on top, and a Redis key is named only by its owner (its key module
in jobsite/keyspace/ imported by that owner alone, none of its keys reached through one of its modules elsewhere)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jobsite"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every module this one imports, resolved to a module name: `from . import x` imports module x (its package is
    already initialised as x's parent); `from .m import name` imports m."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(target)  # names defined in `target` itself
    return found


GRAPH = {name: {m for m in imports_of(name) if m in MODULES and m != name} for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path a -> ... -> a, or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_product_code_never_imports_the_sandbox() -> None:
    offenders = {
        name
        for name, deps in GRAPH.items()
        if not name.startswith("jobsite.sandbox")
        and name != "jobsite.cli"
        and any(d.startswith("jobsite.sandbox") for d in deps)
    }
    assert offenders == set()


def test_only_the_lever_client_speaks_http() -> None:
    # cli.py polls the site's own /healthz while starting it; nothing else outside the sandbox uses an HTTP client.
    users = {
        name
        for name in MODULES
        if not name.startswith("jobsite.sandbox")
        if any(m == "requests" or m.startswith(("requests.", "urllib3")) for m in imports_of(name))
    }
    assert users == {"jobsite.lever.client", "jobsite.cli"}


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in MODULES
        if not n.startswith(("jobsite.web", "jobsite.sandbox")) and n not in ("jobsite", "jobsite.cli")
    ),
)
def test_the_web_sits_on_top(name: str) -> None:
    """Below the web, no module imports a blueprint: delivery and intake work without Flask."""
    assert not {d for d in GRAPH[name] if d.startswith("jobsite.web")}


def test_imports_go_down_the_layers() -> None:
    """The layers contract in pyproject.toml ([tool.importlinter]), checked by import-linter on the real import graph:
    an import that runs upward, even inside a function, fails here with the line that makes it."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_every_subpackage_is_a_layer() -> None:
    """A new package or top-level module is placed in the contract, so the folder list and the layers stay one map."""
    import tomllib

    contract = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    placed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    children = {
        p.stem if p.suffix == ".py" else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()
    }
    assert children - {"sandbox"} == placed


@pytest.mark.parametrize("module", ["jobsite.worker.process", "jobsite.worker.tasks", "jobsite"])
def test_a_worker_never_loads_flask(module: str) -> None:
    """A worker (and the package's root) runs without Flask: the app factory lives in web/app.py, and nothing below
    the web imports Flask at import time. In a fresh interpreter, so what the test process loaded does not count."""
    check = f"import sys, {module}; assert 'flask' not in sys.modules, sorted(m for m in sys.modules if 'flask' in m)"
    done = subprocess.run([sys.executable, "-c", check], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_no_module_basename_is_used_twice() -> None:
    """One name, one module: two `accept.py` or two `retention.py` mislead a reader, a traceback and a search alike."""
    names = sorted(p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_few_modules_at_the_top() -> None:
    """The top of jobsite/ holds the processes, the composition root and a few base modules; everything else lives in
    a package named for what it owns (at most 15 modules, __init__.py and __main__.py included)."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 15, top


@pytest.mark.parametrize(
    "module",
    [
        "jobsite.admission",
        "jobsite.privacy",
        "jobsite.delivery",
        "jobsite.console",
        "jobsite.intake",
        "jobsite.followup",
        "jobsite.sourcing",
        "jobsite.alerts",
    ],
)
def test_these_take_inputs_not_the_locator(module: str) -> None:
    """Each of these takes what it uses, built once by services.py (admission's checks an `Admission`, delivery,
    the follow-ups, sourcing and retention a `Delivery`, the dashboard a `Board`, intake an `Intake`, sourcing's
    sign-ups an `Enrolment`, the job alerts an `Alerting`), or plain arguments (applications' retention a Redis client
    and its period): never `Services` itself, the locator (the layer contract puts services.py above them all)."""
    assert {name for name in MODULES if name.startswith(module) and "jobsite.services" in GRAPH[name]} == set()


# Redis keys (ARCHITECTURE.md, "One owner per Redis key family"): every key name is in jobsite/keyspace/, one module
# per owner, `<owner>_keys.py` for the package `jobsite/<owner>/` or the top-level module `jobsite/<owner>.py`.
KEY_MODULES = {name for name in MODULES if name.startswith("jobsite.keyspace.")}


def owner_of(module: str) -> str:
    """What owns keys: a package of jobsite/, or a module at its top."""
    return ".".join(module.split(".")[:2])


def key_owner(key_module: str) -> str:
    return "jobsite." + key_module.rpartition(".")[2].removesuffix("_keys")


def test_each_key_module_is_named_for_one_owner() -> None:
    assert KEY_MODULES, "no key module found"
    assert {k for k in KEY_MODULES if not k.endswith("_keys") or key_owner(k) not in MODULES} == set()


def test_a_key_module_is_imported_by_its_owner_alone() -> None:
    """Only the owner's modules (and tests, bench/, scripts/, the sandbox) read or write its keys."""
    wrong = sorted(
        f"{module} imports {key_module}"
        for module, imported in GRAPH.items()
        if not module.startswith("jobsite.sandbox")
        for key_module in imported & KEY_MODULES
        if owner_of(module) != key_owner(key_module)
    )
    assert wrong == []


def _resolved(module: str, node: ast.ImportFrom) -> str:
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_key_name(value: ast.expr, names: set[str]) -> bool:
    """`KEY`, `KEY.format(...)`, or a list of them."""
    if isinstance(value, ast.Name):
        return value.id in names
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "format":
        return _is_key_name(value.func.value, names)
    if isinstance(value, ast.ListComp):
        return _is_key_name(value.elt, names)
    return isinstance(value, ast.List | ast.Tuple) and any(_is_key_name(v, names) for v in value.elts)


def _key_names(module: str, tree: ast.Module) -> set[str]:
    """The keys an owner's module holds: the names it imports from its key module, and its functions that build a
    key name from them, given no Redis client (`def record_key(receipt): return RECORD.format(receipt)`)."""
    names = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and _resolved(module, node) in KEY_MODULES
        for alias in node.names
    }
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            annotations = " ".join(ast.unparse(a.annotation) for a in node.args.args if a.annotation)
            returns = [n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None]
            if not any(t in annotations for t in ("Redis", "Pipeline", "Services")) and any(
                _is_key_name(value, names) for value in returns
            ):
                names.add(node.name)
    return names


def key_uses_outside_their_owner() -> list[str]:
    """Every place a module names a key of another owner through one of that owner's modules (`store.ALL`,
    `from ..records.store import ALL`), which import-time names would otherwise let through."""
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}
    held = {name: _key_names(name, tree) for name, tree in trees.items() if not name.startswith("jobsite.keyspace")}
    found = []
    for module, tree in trees.items():
        if module.startswith(("jobsite.sandbox", "jobsite.keyspace")):
            continue
        aliases: dict[str, str] = {}  # a name in this module -> the module of jobsite it is
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolved(module, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                    elif alias.name in held.get(source, ()) and owner_of(source) != owner_of(module):
                        found.append(f"{module}:{node.lineno} imports {source}.{alias.name}")
            elif isinstance(node, ast.Import):
                aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                source = aliases[node.value.id]
                if node.attr in held.get(source, ()) and owner_of(source) != owner_of(module):
                    found.append(f"{module}:{node.lineno} uses {source}.{node.attr}")
    return sorted(found)


def test_no_module_names_another_owners_keys() -> None:
    """Another owner's data goes through a function of its owner (a read, a count, a scan), never its key."""
    assert key_uses_outside_their_owner() == []
