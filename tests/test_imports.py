"""No import cycle hidden behind a function-level import: app/ imports at module level only (STYLE.md §6),
and never imports workers/ (the job processes import the app, not the reverse)."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
# Optional heavy dependencies loaded only by the code path that needs them, not cycle dodges.
LAZY_ON_PURPOSE = {
    ("app/sync/providers/caldav.py", "dns.exception"),
    ("app/sync/providers/caldav.py", "dns.resolver"),
}


def _imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            yield node, [node.module or ""]


def _is_type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def test_app_imports_at_module_level_only():
    nested = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top_level = {id(node) for node in tree.body}
        # Names for annotations only (SQLAlchemy's two-way relationships): never imported at run time.
        top_level |= {id(inner) for node in tree.body if _is_type_checking_block(node) for inner in node.body}
        relative = str(path.relative_to(APP.parent))
        for node, names in _imports(tree):
            if id(node) not in top_level and not all((relative, name) in LAZY_ON_PURPOSE for name in names):
                nested.append(f"{relative}:{node.lineno} {', '.join(names)}")
    assert nested == []


def test_app_never_imports_the_worker_processes():
    offenders = [
        str(path.relative_to(APP.parent))
        for path in APP.rglob("*.py")
        for _node, names in _imports(ast.parse(path.read_text()))
        if any(name == "workers" or name.startswith("workers.") for name in names)
    ]
    assert offenders == []
