"""What an executed notebook must show: every cell tagged ``figure`` displays exactly one
``image/png``; no other cell displays one (no figure shown twice); no cell shows a bare
``<Figure ...>`` text in place of a picture."""

from __future__ import annotations

import re
from typing import Any

BARE_FIGURE = re.compile(r"<(matplotlib\.figure\.)?\w*Figure size \d+(\.\d+)?x\d+(\.\d+)? with \d+ Axes>")


def figure_problems(nb: Any) -> list[str]:
    """Problems with an executed notebook's figures (empty when it is right)."""
    problems = []
    tagged = 0
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        wanted = 1 if "figure" in cell.get("metadata", {}).get("tags", []) else 0
        tagged += wanted
        outputs = cell.get("outputs", [])
        pngs = sum("image/png" in out.get("data", {}) for out in outputs)
        if pngs != wanted:
            problems.append(f"cell {i}: {pngs} image/png outputs, expected {wanted}")
        for out in outputs:
            data = out.get("data", {})
            if "image/png" not in data and BARE_FIGURE.search(str(data.get("text/plain", ""))):
                problems.append(f"cell {i}: a figure shown as text: {data['text/plain']!r}")
    if not tagged:
        problems.append("no cell tagged 'figure': every notebook shows at least one figure")
    return problems
