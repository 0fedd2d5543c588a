"""The protocol package stays sans-IO: no module in it imports an I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import imtegrity_proxy.protocol

IO_MODULES = {"asyncio", "aiohttp", "socket", "selectors", "ssl", "subprocess", "threading"}
PACKAGE = Path(imtegrity_proxy.protocol.__file__).parent


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            # "from ..relay import x" leaves the protocol package.
            roots.add("imtegrity_proxy")
    return roots


def test_protocol_modules_import_no_io():
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for module in modules:
        assert imported_roots(module) & IO_MODULES == set(), module.name


def test_protocol_imports_nothing_from_relay():
    for module in sorted(PACKAGE.glob("*.py")):
        roots = imported_roots(module)
        assert "imtegrity_proxy" not in roots, module.name

