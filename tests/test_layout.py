"""The package's shape: imports run downward, one name per module, files a reader can hold.

Layers (DESIGN.md, STYLE.md 13): `ghframes/` is the library and imports neither the Ray
programs (`ghframes.pipelines`, folder `pipelines/`) nor the trainer (`ghframes.training`,
folder `training/`), under any spelling: absolute, relative, `from ghframes import training`
or `importlib.import_module("...")`. The top layer may import anything: the command line
(`ghframes/cli/`, with `ghframes/__main__.py`), the benchmark runner (`ghframes/bench/`) and
`ghframes/demo.py`, the `make demo` program, which drives the command line (`from ghframes
import cli`) and starts the trainer as a subprocess. The library does not import the top layer
either.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "ghframes"
TOP_LAYER = ("ghframes/cli/", "ghframes/bench/", "ghframes/__main__.py", "ghframes/demo.py")
PROGRAMS = ("ghframes.pipelines", "ghframes.training", "pipelines", "training")
TOP = ("ghframes.cli", "ghframes.bench", "ghframes.demo", "ghframes.__main__")
# The folders installed under another name (pyproject.toml [tool.setuptools.package-dir]).
RENAMED = ("training", "pipelines", "schemas")
MAX_LINES = 500


def repo_files() -> list[str]:
    """Files that are or would be committed: tracked, plus untracked ones git does not ignore."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted(p for p in done.stdout.splitlines() if (REPO / p).is_file())


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(module: str, is_package: bool, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in `source`, at any depth.

    `from A import B` yields A and A.B (B may be a submodule); relative imports are resolved
    against `module`; `importlib.import_module("X")` and `__import__("X")` with a literal
    string count as imports of X.
    """
    package = module if is_package else module.rpartition(".")[0]

    def resolve(name: str, level: int) -> str:
        if not level:
            return name
        base = package.split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, name] if name else base)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module or "", node.level)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if called in ("import_module", "__import__") and literal:
                level = len(arg.value) - len(arg.value.lstrip("."))
                found.append((node.lineno, resolve(arg.value[level:], level)))
    return found


def within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def library_modules() -> list[Path]:
    return [
        p
        for p in sorted(LIBRARY.rglob("*.py"))
        if not p.relative_to(REPO).as_posix().startswith(TOP_LAYER)
    ]


def upward_imports(roots: tuple[str, ...]) -> list[str]:
    bad = []
    for path in library_modules():
        module = module_name(path)
        for line, name in imported_names(module, path.name == "__init__.py", path.read_text()):
            if within(name, roots):
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    return bad


def test_the_import_finder_sees_every_spelling():
    source = """
import os
def f():
    import ghframes.training.train
    from ghframes import pipelines
    from .. import training
    from ..pipelines.crawl import crawl
    from . import chunks
    importlib.import_module("training.loader")
    __import__("ghframes.cli")
"""
    names = {n for _, n in imported_names("ghframes.store.codec", False, source)}
    assert {n for n in names if within(n, PROGRAMS)} == {
        "ghframes.training.train",
        "ghframes.pipelines",
        "ghframes.training",
        "ghframes.pipelines.crawl",
        "ghframes.pipelines.crawl.crawl",
        "training.loader",
    }
    assert {"ghframes.store.chunks", "ghframes.cli"} <= names


def test_the_library_imports_neither_pipelines_nor_training():
    assert library_modules(), "no library modules found"
    bad = upward_imports(PROGRAMS)
    assert not bad, "the library imports the programs built on it:\n" + "\n".join(bad)


def test_the_library_does_not_import_the_top_layer():
    bad = upward_imports(TOP)
    assert not bad, "the library imports the command line or the benchmarks:\n" + "\n".join(bad)


# Inside the library, what each part may import besides itself (docs/ARCHITECTURE.md):
# store/ is the base; crawl/ and render/ sit on it; view/ and the checks read what render draws.
BASE = ("ghframes.errors", "ghframes.text", "ghframes.schemas")
LIBRARY_LAYERS = {
    "ghframes.store": BASE,
    "ghframes.crawl": (*BASE, "ghframes.store"),
    "ghframes.render": (*BASE, "ghframes.store"),
    "ghframes.view": (*BASE, "ghframes.store", "ghframes.render"),
}


def test_library_parts_import_only_the_layers_below_them():
    bad = []
    for path in library_modules():
        module = module_name(path)
        part = next((p for p in LIBRARY_LAYERS if within(module, (p,))), None)
        if part is None:
            continue
        allowed = (part, *LIBRARY_LAYERS[part])
        for line, name in imported_names(module, path.name == "__init__.py", path.read_text()):
            if within(name, ("ghframes",)) and name != "ghframes" and not within(name, allowed):
                bad.append(f"{path.relative_to(REPO)}:{line}: {part} imports {name}")
    assert not bad, "an import runs upward inside the library:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", RENAMED)
def test_a_renamed_folder_imports_only_under_its_installed_name(name):
    """From the repository root the folder is on sys.path too; importing it so must fail."""
    run = [sys.executable, "-c"]
    done = subprocess.run([*run, f"import {name}"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: import the ") and f" as ghframes.{name} (" in last, last
    code = f"import ghframes.{name} as m; print(m.__name__)"
    done = subprocess.run([*run, code], cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"ghframes.{name}\n"), done.stderr


def test_every_package_folder_outside_ghframes_is_a_renamed_one():
    folders = {p.split("/")[0] for p in repo_files() if p.endswith("/__init__.py")}
    assert folders - {"ghframes"} == set(RENAMED)


def refers_to_a_top_level_name(line: str) -> bool:
    """`-m training.train`, `from training.x import y`, `import training` (not `from ghframes
    import training`, nor a line saying that such an import raises ImportError)."""
    names = "|".join(RENAMED)
    if "ImportError" in line:
        return False
    if re.search(rf"-m ({names})\b|\bfrom ({names})(\.\w+)* import\b", line):
        return True
    return any(
        not re.search(r"\bfrom [\w.]+ $", line[: m.start()])
        for m in re.finditer(rf"\bimport ({names})\b(?!/)", line)
    )


def test_the_top_level_name_finder():
    for line in ("python -m training.train", "from pipelines.crawl import crawl", "import schemas"):
        assert refers_to_a_top_level_name(line), line
    for line in (
        "python -m ghframes.training.train",
        "from ghframes import training",
        "from .. import pipelines",
        "read from schemas/ via the loader",
        "`import training` raises an ImportError",
    ):
        assert not refers_to_a_top_level_name(line), line


def test_no_file_refers_to_the_top_level_names():
    kinds = (".py", ".md", ".toml", ".sh")
    bad = []
    this = Path(__file__).resolve().relative_to(REPO).as_posix()  # spells them out, as tests
    for path in repo_files():
        if path == this or not (path.endswith(kinds) or path.rsplit("/", 1)[-1] == "Makefile"):
            continue
        for number, line in enumerate((REPO / path).read_text().splitlines(), 1):
            if refers_to_a_top_level_name(line):
                bad.append(f"{path}:{number}: {line.strip()}")
    assert not bad, "use the installed names (ghframes.training, ...):\n" + "\n".join(bad)


def test_no_python_file_is_over_500_lines():
    lengths = {
        path: len((REPO / path).read_text().splitlines())
        for path in repo_files()
        if path.endswith(".py")
    }
    over = sorted((n, p) for p, n in lengths.items() if n > MAX_LINES)
    report = "\n".join(f"{n:6} {p}" for n, p in reversed(over))
    assert not over, f"{len(over)} Python files over {MAX_LINES} lines:\n{report}"


def test_installing_puts_only_ghframes_in_site_packages():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert not {"py-modules", "ext-modules"} & setuptools.keys()
    packages = setuptools["packages"]
    assert isinstance(packages, list), "packages must be listed, not found"
    mapping = setuptools.get("package-dir", {})
    for name in [*packages, *mapping]:
        assert name == "ghframes" or name.startswith("ghframes."), name

    def folder(package: str) -> Path:
        """Where setuptools finds `package`: below its nearest mapped parent, else the root."""
        head, rest = package, []
        while head and head not in mapping:
            head, _, tail = head.rpartition(".")
            rest.insert(0, tail)
        return REPO / mapping.get(head, mapping.get("", ".")) / Path(*rest)

    for package in packages:
        assert (folder(package) / "__init__.py").is_file(), package
    # Every package folder is installed (a subpackage missing from `packages` would be left out).
    listed = {folder(p).resolve() for p in packages}
    for path in repo_files():
        if path.endswith("/__init__.py") and not path.startswith("tests/"):
            assert (REPO / path).parent.resolve() in listed, f"{path}: not in packages"
