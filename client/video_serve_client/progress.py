"""The progress bar of `wait(progress=True)`: the stage name and the percent, driven by job events."""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

from tqdm import tqdm


class ProgressBar:
    """A 0-100 bar whose label is the job's current stage."""

    def __init__(self, job_id: str, file: TextIO | None = None) -> None:
        self._bar = tqdm(
            total=100,
            file=file or sys.stderr,
            desc=job_id[:24],
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
            ncols=min(shutil.get_terminal_size().columns, 100),  # a terminal that reports no size gets 80
        )

    def update(self, view: dict[str, Any]) -> None:
        """Show a job's state: `{status, stage, progress}` (an event's data or a job view)."""
        self._bar.n = float(view.get("progress") or 0)
        self._bar.set_postfix_str(str(view.get("stage") or view.get("status")), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
