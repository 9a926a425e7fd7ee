"""The shape of the library: one concern per module, imports pointing one way, click and
printing only in the CLI, one writer of each piece of state."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "skill" / "log_archiver"
MAX_LINES = 420

# Lower layers never import higher ones; a layer may use its own and every lower one.
LAYERS = {
    "errors": 0, "util": 0, "events": 0, "__init__": 0,
    "config": 1, "model": 1, "redaction": 1,
    "index": 2, "storage": 2, "integrations": 2, "audit": 2,
    "repository": 3,
    "archive": 4, "retrieve": 4, "search": 4, "lifecycle": 4, "integrity": 4, "metrics": 4,
    "queue": 5,
    "cli": 6, "merge": 6, "__main__": 6,
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def room_of(path_or_name) -> str:
    if isinstance(path_or_name, Path):
        parts = path_or_name.relative_to(PACKAGE).with_suffix("").parts
    else:
        parts = tuple(path_or_name.split(".")[1:]) or ("__init__",)
    return parts[0]


def imported(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            names.append(f"relative import {'.' * node.level}{node.module or ''}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_every_module_is_small():
    big = {str(p.relative_to(PACKAGE)): n for p in modules()
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_imports_point_one_way():
    upward = []
    for path in modules():
        here = room_of(path)
        assert here in LAYERS, f"{path} is in no known layer: add its room to LAYERS"
        for name in imported(ast.parse(path.read_text())):
            if name.startswith("relative import"):  # absolute imports only: checkable
                upward.append(f"{path.relative_to(PACKAGE)}: {name}")
                continue
            if not name.startswith("log_archiver.") and name != "log_archiver":
                continue
            there = room_of(name)
            if LAYERS.get(there, 99) > LAYERS[here]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not upward, upward


def test_only_the_cli_uses_click_and_prints():
    offenders = []
    for path in modules():
        if room_of(path) in ("cli",):
            continue
        tree = ast.parse(path.read_text())
        if any(name.split(".")[0] == "click" for name in imported(tree)):
            offenders.append(f"{path.relative_to(PACKAGE)} imports click")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "print":
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} prints")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                    and isinstance(node.value, ast.Name) and node.value.id == "sys" \
                    and room_of(path) not in ("merge", "index"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} writes to "
                                 f"sys.{node.attr}")
            if isinstance(node, ast.Attribute) and node.attr == "exit" \
                    and isinstance(node.value, ast.Name) and node.value.id == "sys" \
                    and room_of(path) not in ("merge", "index"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} calls sys.exit")
    assert not offenders, offenders


def _writes_upload_status(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) \
                        and target.slice.value == "upload_status":
                    lines.append(node.lineno)
        if isinstance(node, ast.Call) and any(kw.arg == "upload_status" for kw in node.keywords):
            lines.append(node.lineno)
        keys = {k.value for k in getattr(node, "keys", []) if isinstance(k, ast.Constant)}
        if isinstance(node, ast.Dict) and {"upload_status", "checksum"} <= keys:
            lines.append(node.lineno)  # a record built by hand
    return lines


def test_one_module_writes_upload_status():
    writers = {str(p.relative_to(PACKAGE)): lines for p in modules()
               if (lines := _writes_upload_status(ast.parse(p.read_text())))}
    assert set(writers) == {"model/states.py"}, writers


def _builds_keys(tree: ast.AST) -> bool:
    """An f-string or a regular expression spelling out the key layout."""
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.Constant) and "archive/logs" in str(v.value)
                for v in node.values):
            return True
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "compile" \
                and any(isinstance(a, ast.Constant) and "archive/logs" in str(a.value)
                        for a in node.args):
            return True
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and str(node.value.value).startswith("archive/logs"):
            return True
    return False


def test_one_module_builds_and_parses_remote_keys():
    holders = [str(p.relative_to(PACKAGE)) for p in modules()
               if _builds_keys(ast.parse(p.read_text()))]
    assert holders == ["model/keys.py"], holders
