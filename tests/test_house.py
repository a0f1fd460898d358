"""The house rules, checked so the code stays this way: small modules, classes and functions; no block of
code written twice; each layer imports only the layers below it (README: Architecture)."""

import ast
import collections
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("sinks", "emulators", "relay", "orchestration")
MAX_SINKS_FILE_LINES = 400
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60
DUPLICATE_BLOCK_LINES = 8
# Which top-level packages each may import (the project's own; libraries are free, except Dagster in sinks).
ALLOWED = {
    "sinks": {"sinks", "relay.config"},
    "emulators": {"emulators", "relay.config"},
    "relay": {"relay", "sinks"},
    "orchestration": {"orchestration", "relay", "sinks"},
}


def product_files() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_no_module_in_sinks_over_400_lines():
    long = {rel(p): n for p in (ROOT / "sinks").rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_SINKS_FILE_LINES}
    assert not long, f"modules in sinks/ over {MAX_SINKS_FILE_LINES} lines: {long}"


def test_no_class_over_300_lines_and_no_function_over_60():
    too_long = []
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            limit = {ast.ClassDef: MAX_CLASS_LINES, ast.FunctionDef: MAX_FUNCTION_LINES,
                     ast.AsyncFunctionDef: MAX_FUNCTION_LINES}.get(type(node))
            if limit and (n := node.end_lineno - node.lineno + 1) > limit:
                too_long.append(f"{rel(path)}:{node.lineno} {node.name} ({n} lines > {limit})")
    assert not too_long, "\n".join(too_long)


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("package", PRODUCT)
def test_each_layer_imports_only_the_layers_below_it(package):
    allowed = ALLOWED[package]
    wrong = []
    for path in (ROOT / package).rglob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if package == "sinks" and top == "dagster":
                wrong.append(f"{rel(path)} imports {name} (sinks/ stays free of Dagster)")
            elif top in PRODUCT and not any(name == a or name.startswith(a + ".") for a in allowed) \
                    and not any(a.startswith(name + ".") for a in allowed):  # `from relay import config`
                wrong.append(f"{rel(path)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_block_of_eight_lines_written_twice():
    """Eight consecutive non-blank code lines (comments and docstrings included as written) that appear twice."""
    seen: dict[tuple, list[str]] = collections.defaultdict(list)
    for path in product_files():
        lines = [(i + 1, line.strip()) for i, line in enumerate(path.read_text().splitlines()) if line.strip()]
        for j in range(len(lines) - DUPLICATE_BLOCK_LINES + 1):
            block = tuple(text for _, text in lines[j:j + DUPLICATE_BLOCK_LINES])
            # Only blocks with substance: closing brackets and one-word lines repeat innocently.
            if sum(len(t) > 12 for t in block) >= DUPLICATE_BLOCK_LINES - 1:
                seen[block].append(f"{rel(path)}:{lines[j][0]}")
    twice = [places for places in seen.values() if len(places) > 1]
    assert not twice, "blocks written twice: " + "; ".join(" and ".join(p) for p in twice)
