"""The layering of docs/architecture.md, read from the imports of every module (also those inside
functions), so that it cannot drift: each part imports only the parts below it, the simulator
runtimes import nothing of spikeport, and no module imports another module's private names."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "spikeport"

BASE = {"errors", "units", "progress", "budget", "outputs"}
# part -> the parts it may import (the root package only for __version__, checked apart)
ALLOWED = {
    "errors": set(), "units": set(), "progress": set(),
    "budget": {"errors"},                    # what a stranger's file may make spikeport allocate
    "outputs": {"errors"},                   # every command's output paths, staged and checked alike
    "runtimes": set(),                       # copied beside emitted scripts: nothing of spikeport
    "ir": {"errors", "budget", "outputs"},
    "hardware_profiles": {"errors", "budget", "outputs"},
    "datasets": {"errors", "ir", "budget", "outputs"},
    "backends": BASE | {"ir", "runtimes"},
    "models": BASE | {"ir", "datasets"},
    "passes": BASE | {"ir", "datasets", "models", "backends"},
    "deploy": BASE | {"ir", "datasets", "backends", "hardware_profiles", "runtimes", "passes"},
    "api": BASE | {"ir", "datasets", "models", "backends", "passes", "deploy", "hardware_profiles", "runtimes"},
    "sweeps": BASE | {"ir", "datasets", "models", "backends", "passes", "deploy", "hardware_profiles", "runtimes",
                      "api"},
    "cli": BASE | {"ir", "datasets", "models", "backends", "passes", "deploy", "hardware_profiles", "runtimes",
                   "api", "sweeps"},
    "__main__": {"cli"},
    "__init__": set(),                       # the root package names the API lazily, by strings
}


def module_name(path: Path, root: Path) -> tuple:
    """(dotted module name, the package its relative imports start from)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imports(path: Path, root: Path, source: str):
    """(line, imported module, [names]) for every import of the project in ``source``, the text of ``path``."""
    name, package = module_name(path, root)
    top = root.name
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == top or target.startswith(top + "."):
                yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == top or a.name.startswith(top + "."):
                    yield node.lineno, a.name, []


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def violations(root: Path, added: dict | None = None) -> list:
    """Every import in the package at ``root`` that breaks the layering, as one line each; ``added``:
    {module path relative to ``root``: text appended to that module} (to show the check fails)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        name, _ = module_name(path, root)
        src = part(name)
        where = f"{path.relative_to(root.parent)}"
        source = path.read_text() + (added or {}).get(str(path.relative_to(root)), "")
        for line, target, names in imports(path, root, source):
            dst = part(target)
            if dst == "__init__":  # the root package: its version only
                if set(names) - {"__version__"}:
                    out.append(f"{where}:{line}: imports {sorted(set(names) - {'__version__'})} from the root package")
                elif src == "runtimes":
                    out.append(f"{where}:{line}: a runtime imports spikeport")
                continue
            if dst != src and dst not in ALLOWED.get(src, set()):
                out.append(f"{where}:{line}: {src} -> {dst} ({target}) runs against the layering")
            if target != name and target.rsplit(".", 1)[-1] != "__init__":
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    out.append(f"{where}:{line}: imports private {private} of {target}")
    return out


def test_every_part_is_listed():
    parts = {part(module_name(p, PACKAGE)[0]) for p in PACKAGE.rglob("*.py")}
    assert parts - set(ALLOWED) == set(), "a new part: give it its place in ALLOWED and docs/architecture.md"


def test_the_package_follows_the_layering():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize("module, line, expected", [
    ("ir/network.py", "from ..backends import reference", "ir -> backends"),
    ("models/convert.py", "from ..backends.reference import run", "models -> backends"),
    ("deploy/pipeline.py", "from ..api import simulate", "deploy -> api"),
    ("runtimes/readout.py", "from ..ir import Network", "runtimes -> ir"),
    ("runtimes/readout.py", "from .. import __version__", "a runtime imports spikeport"),
    ("backends/common.py", "from .reference import _torch", "imports private ['_torch']"),
    ("deploy/energy.py", "from spikeport import simulate", "from the root package"),
])
def test_a_wrong_way_import_is_caught(module, line, expected):
    """The check fails when a wrong-way import is added to a module (here: appended to its text)."""
    found = violations(PACKAGE, {module: f"\n\ndef _added():\n    {line}\n"})
    assert len(found) == 1 and expected in found[0] and module in found[0], found
