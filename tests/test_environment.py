"""environment.yml (conda) must install exactly what pyproject.toml declares: dependencies and all extras."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def normalise(requirement: str) -> str:
    """Canonical form of one requirement string: normalised name, sorted extras and specifiers, marker."""
    req = Requirement(requirement)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    specifier = ",".join(sorted(str(s) for s in req.specifier))
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{specifier}{marker}"


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    strings = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        strings += extra
    self_name = canonicalize_name(project["name"])  # an extra like "f2d2mini[book,test]" is not a package
    return {normalise(s) for s in strings if canonicalize_name(Requirement(s).name) != self_name}


def _pip_list_by_hand(text: str) -> list[str]:
    """The items under `- pip:` in a simple environment.yml (fallback when PyYAML is missing)."""
    items, indent = [], None
    for line in text.splitlines():
        stripped = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not stripped:
            continue
        depth = len(stripped) - len(stripped.lstrip())
        if indent is None:
            if re.fullmatch(r"-\s*pip\s*:", stripped.strip()):
                indent = depth
            continue
        if depth <= indent:
            break
        items.append(stripped.strip().removeprefix("-").strip().strip("'\""))
    return items


def environment_pip_list() -> list[str]:
    text = (ROOT / "environment.yml").read_text()
    try:
        import yaml
    except ImportError:
        return _pip_list_by_hand(text)
    for dep in yaml.safe_load(text)["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(item) for item in dep["pip"]]
    return []


def test_environment_yml_matches_pyproject():
    pip_list = environment_pip_list()
    assert "-e ." in pip_list, "environment.yml should install the package itself with `-e .`"
    conda = {normalise(s) for s in pip_list if not s.startswith("-e")}
    pyproject = pyproject_requirements()
    assert conda == pyproject, (
        "environment.yml and pyproject.toml disagree.\n"
        f"  only in pyproject.toml: {sorted(pyproject - conda)}\n"
        f"  only in environment.yml: {sorted(conda - pyproject)}"
    )


def test_hand_parser_agrees_with_yaml():
    """The fallback parser reads our environment.yml the same way PyYAML does."""
    text = (ROOT / "environment.yml").read_text()
    assert _pip_list_by_hand(text) == environment_pip_list()


def test_normalise_catches_a_difference():
    assert normalise("Jupyter_Book <2, >=1.0.4") == normalise("jupyter-book>=1.0.4,<2")
    assert normalise("torch>=2.4") != normalise("torch")
