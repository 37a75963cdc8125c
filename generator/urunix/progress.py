"""What `urunix build` is doing, on stderr: the current step by name
(reading the tree, mke2fs, layer n of m, writing).

On a terminal, one status line redrawn in place, cut to the terminal's
width so that it never wraps (a 60-column terminal included); cleared when
the build ends or is interrupted, so "interrupted" starts its own line.
Otherwise (a log, CI), one plain line per step and no redraws.

native/build.py calls, on the object it is given as `progress`:
    step(text)                 a new step
    layers([(name, size)...])  the layers about to be written
    progress(total)            a context manager yielding advance(nbytes)"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO


def _size(n: int) -> str:
    if n < 1 << 10:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


class BuildProgress:
    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        tty: bool | None = None,
        width: int | None = None,
        rootfs_tool: str | None = None,
    ):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() and not os.environ.get("CI") if tty is None else tty
        self.width = width
        self.label = label
        self.rootfs_tool = rootfs_tool  # "cpio" or "mke2fs": what the rootfs layer runs
        self._layers: list[tuple[str, int]] = []
        self._drawn = False
        self._last = 0.0

    # -- output ---------------------------------------------------------------
    def _columns(self) -> int:
        return self.width or shutil.get_terminal_size((80, 24)).columns

    def _draw(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        cut = text[: max(self._columns() - 1, 1)]  # one short of the edge: no auto-wrap
        self.stream.write("\r\x1b[K" + cut)
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def step(self, text: str) -> None:
        if self.tty:
            self._draw(text, force=True)
        else:
            print(f"urunix: {text}", file=self.stream, flush=True)

    # -- the protocol of native/build.py -----------------------------------------
    def layers(self, layers: list[tuple[str, int]]) -> None:
        self._layers = list(layers)

    def _layer_text(self, i: int) -> str:
        name, size = self._layers[i]
        tool = f", {self.rootfs_tool}" if name == "rootfs" and self.rootfs_tool == "cpio" else ""
        return f"layer {i + 1} of {len(self._layers)}: {name} ({_size(size)}{tool})"

    @contextmanager
    def __call__(self, total: int) -> Iterator[Callable[[int], None]]:
        ends, acc = [], 0
        for _, size in self._layers:
            acc += size
            ends.append(acc)
        state = {"done": 0, "layer": -1}

        def enter(i: int) -> None:
            state["layer"] = i
            if i < len(self._layers):
                self.step(self._layer_text(i))

        def advance(n: int) -> None:
            state["done"] += n
            while state["layer"] + 1 < len(ends) and state["done"] >= ends[state["layer"]]:
                enter(state["layer"] + 1)  # the bytes of the one before are all written
            if self.tty and 0 <= state["layer"] < len(self._layers):
                pct = 100 * state["done"] // total if total else 100
                self._draw(f"{self._layer_text(state['layer'])} {pct:3d}%")

        try:
            if self._layers:
                enter(0)
            yield advance
            self.step(f"writing {self.label}")
        finally:
            self.clear()
