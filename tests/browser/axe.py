"""axe-core (npm, package.json's devDependencies) run in the page a journey is on: WCAG 2.2 A and AA.

The script is evaluated through the DevTools protocol, so the pages' Content-Security-Policy (no inline
script) stays as it is in production.
"""

from pathlib import Path

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


def violations(page) -> list[str]:
    """Each WCAG 2.2 A/AA violation on the page as "rule: target (summary)"; empty when there is none."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", TAGS
    )
    return [
        f"{violation['id']}: {node['target']} ({node.get('failureSummary', '').strip()[:200]})"
        for violation in result["violations"]
        for node in violation["nodes"]
    ]


def assert_accessible(page, state: str) -> None:
    found = violations(page)
    assert not found, f"axe-core WCAG 2.2 A/AA violations on {state}:\n" + "\n".join(found)
