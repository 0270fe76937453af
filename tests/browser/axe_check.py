"""axe-core in a page: the WCAG 2.x A and AA rules, loaded from tests/browser/node_modules
(``npm ci`` there; no CDN)."""

import json
from pathlib import Path

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.x A and AA rules on the page as it stands: each violation with its
    nodes' targets, so a failure says what and where."""
    # evaluated through the DevTools protocol, which the page's CSP (no inline script) allows
    page.evaluate(AXE.read_text())
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
    return [
        {"id": v["id"], "impact": v["impact"], "targets": [node["target"] for node in v["nodes"]]}
        for v in json.loads(json.dumps(result["violations"]))
    ]
