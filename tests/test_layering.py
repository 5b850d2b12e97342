"""Lower modules never import higher ones: the order of README.md's layout, checked on every module's imports.

The layout lists f2d2mini's modules from the bottom up (``checks.py`` first); a module may import only modules
listed above it. A package line (``bench/``) stands for all of its modules, which may import each other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "f2d2mini"
LAYOUT_LINE = re.compile(r"^  ([\w/]+(?:\.py|/))\s")


def readme_order() -> list[str]:
    """Module names (``images.unet``, ``bench``) in the order of README.md's layout block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("f2d2mini/          the library"):]
    block = block[:block.index("```")]
    names = []
    for line in block.splitlines()[1:]:
        match = LAYOUT_LINE.match(line)
        if match:
            names.append(match.group(1).removesuffix(".py").removesuffix("/").replace("/", "."))
    return names


def unit(module: str, order: list[str]) -> str:
    """The layout entry a module belongs to: itself, or its package's line."""
    return module if module in order else module.split(".")[0]


def imports_of(path: Path) -> set[str]:
    """The f2d2mini modules that ``path`` imports (at any depth of the file), relative to the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("f2d2mini"):
            base = node.module.removeprefix("f2d2mini").lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}".lstrip(".")
                found.add(candidate if (PACKAGE / f"{candidate.replace('.', '/')}.py").exists()
                          or (PACKAGE / candidate.replace(".", "/")).is_dir() else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("f2d2mini.") for a in node.names if a.name.startswith("f2d2mini.")}
    return {name for name in found if name}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")
            if p.name != "__init__.py"}


def test_every_module_is_in_the_layout():
    order = readme_order()
    missing = sorted(m for m in modules() if unit(m, order) not in order)
    assert not missing, f"modules missing from README.md's layout: {missing}"


def test_no_module_imports_a_higher_one():
    order = readme_order()
    rank = {name: i for i, name in enumerate(order)}
    upward = []
    for name, path in modules().items():
        own = unit(name, order)
        for other in imports_of(path):
            target = unit(other, order)
            if target in rank and target != own and rank[target] > rank[own]:
                upward.append(f"{name} imports {other} (listed below it)")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_the_check_sees_an_upward_import(tmp_path):
    """The parser is live: a module importing something listed after it is found."""
    probe = tmp_path / "probe.py"
    probe.write_text("from f2d2mini import cli\nfrom f2d2mini.images import unet\n")
    assert imports_of(probe) == {"cli", "images.unet"}
