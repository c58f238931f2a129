"""Markdown reports: a table helper and the per-layer report of a `Result`."""

from __future__ import annotations

import os
from typing import Sequence


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
  """A GitHub-flavoured markdown table of `rows` (dicts) restricted to `columns`."""
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for row in rows:
    lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
  return "\n".join(lines)


REPORT_COLUMNS = ("rank", "layer", "type", "macs", "weight_sqnr_db", "weight_sqnr_delta",
                  "activation_sqnr_db", "activation_sqnr_delta", "mse", "precision")


def markdown_report(result, *, title: str, summary: Sequence[str] = (),
                    figures: Sequence[str] = ()) -> str:
  """The report of a `Result` as markdown: summary lines, figures, the per-layer table."""
  parts = [f"# {title}", ""]
  parts += [f"- {line}" for line in summary]
  parts += ["", *[f"![{os.path.splitext(f)[0]}]({f})" for f in figures], "",
            "## Layers, most sensitive first", "",
            markdown_table(result.report_rows(), REPORT_COLUMNS), ""]
  return "\n".join(parts)
