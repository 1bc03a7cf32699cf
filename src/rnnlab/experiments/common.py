"""What every experiment writes: figures (PNG and SVG), Markdown tables and ``report.md``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REPORT = "report.md"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` (for reading) and ``stem.svg`` (for the web), then close ``fig``."""
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.tight_layout()
    for path in paths:
        fig.savefig(path)
    pyplot().close(fig)
    return paths


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def settings_table(config: DataclassInstance) -> str:
    """Every field of a config dataclass, as the flag that sets it."""
    rows = [(f"`--{f.name.replace('_', '-')}`", getattr(config, f.name)) for f in fields(config)]
    return markdown_table(["setting", "value"], rows)


@dataclass
class Report:
    """A Markdown report assembled section by section, written as ``report.md``."""

    title: str
    parts: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=time.process_time)

    def add(self, text: str) -> None:
        self.parts.append(text.strip())

    def figure(self, stem: str, caption: str) -> None:
        self.add(f"![{caption}]({stem}.svg)\n\n*{caption}* ([PNG]({stem}.png))")

    def write(self, out_dir: Path) -> Path:
        seconds = time.perf_counter() - self.started
        cpu = time.process_time() - self.cpu_started
        text = f"# {self.title}\n\n" + "\n\n".join(self.parts)
        # CPU time next to wall time: on a shared machine the wall time alone misleads.
        text += f"\n\nWall time: {seconds:.1f} s (CPU time of all threads: {cpu:.1f} s).\n"
        path = out_dir / REPORT
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
