"""Small node types the core tests plug in (registered like any plugin, through the hook)."""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from neuralgraph.plugin import EscapeKernel, Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl


class Impulse(Node):
    """1.0 at the very first frame, then silence."""

    type_name = "test.impulse"
    out = Output(span=(0.0, 1.0))

    def prepare(self, ctx: PrepareContext) -> None:
        self.fired = False

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        outs.out.fill(0.0)
        if not self.fired:
            outs.out[:, 0] = 1.0
            self.fired = True

    def reset(self) -> None:
        self.fired = False


class Lanes(Node):
    """A constant signal on ``count`` lanes: lane k carries k + 1."""

    type_name = "test.lanes"
    count = Param(init=3, kind=int, min=1, max=64, live=False)
    out = Output(span=(0.0, 1.0))

    def fixed_lanes(self) -> int:
        return self.count

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        for lane in range(self.count):
            outs.out[lane].fill(lane + 1.0)


class Latent(Node):
    """Delays its input by ``samples`` and declares that latency."""

    type_name = "test.latent"
    samples = Param(init=10, kind=int, min=0, max=4096, live=False)
    in_ = Input()
    out = Output()

    def prepare(self, ctx: PrepareContext) -> None:
        self.latency = self.samples
        self.line = np.zeros((ctx.lanes, self.samples + ctx.block_size), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        n = self.samples
        self.line[:, n:] = ins.in_
        outs.out[:] = self.line[:, :frames]
        self.line[:, :n] = self.line[:, frames : frames + n].copy()

    def reset(self) -> None:
        self.line.fill(0.0)


class _BlockCounting(Node):
    """Counts the blocks it ran in ``blocks``, zero after prepare and reset."""

    def prepare(self, ctx: PrepareContext) -> None:
        self.blocks = 0

    def reset(self) -> None:
        self.blocks = 0


class Sleeper(Node):
    """Passes its input through after sleeping ``ms`` milliseconds: a node too slow for real time."""

    type_name = "test.sleeper"
    ms = Param(init=20.0, min=0.0, max=1000.0)
    in_ = Input()
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        time.sleep(self.ms / 1000.0)
        np.copyto(outs.out, ins.in_)


class PlantedBaseException(BaseException):
    """Neither an Exception nor SystemExit/KeyboardInterrupt: must be contained all the same."""


class Raiser(_BlockCounting):
    """Plays its input through, then raises from block ``after`` on."""

    type_name = "test.raiser"
    after = Param(init=2, kind=int, min=0, max=1000)
    kind = Param(init="runtime", kind=str, choices=("runtime", "system_exit", "keyboard_interrupt", "base"))
    in_ = Input()
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        self.blocks += 1
        if self.blocks > self.after:
            if self.kind == "system_exit":
                raise SystemExit(3)
            if self.kind == "keyboard_interrupt":
                raise KeyboardInterrupt
            if self.kind == "base":
                raise PlantedBaseException("planted fault")
            raise RuntimeError("planted fault")
        np.copyto(outs.out, ins.in_)


@njit(cache=True, nogil=True)
def _kernel_raiser(x, counter, out, frames):  # pragma: no cover - compiled
    counter[0] += 1
    if counter[0] > counter[1]:
        raise RuntimeError("planted kernel fault")
    for lane in range(out.shape[0]):
        for i in range(frames):
            out[lane, i] = x[lane, i]


class KernelRaiser(Node):
    """``test.raiser`` with a compiled kernel offered for fusion: raises inside compiled code."""

    type_name = "test.kernel_raiser"
    bypass = "thru"
    after = Param(init=2, kind=int, min=0, max=1000, live=False)
    in_ = Input()
    out = Output()

    def prepare(self, ctx: PrepareContext) -> None:
        self.counter = np.zeros(2, np.int64)
        self.reset()

    def reset(self) -> None:
        self.counter[0] = 0
        self.counter[1] = self.after

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _kernel_raiser(ins.in_, self.counter, outs.out, frames)

    def kernel(self, ins: Ports, outs: Ports):
        return _kernel_raiser, (ins.in_, self.counter, outs.out)


class Stepper(Node):
    """``out = in + level``; every ``every`` samples a Python call raises ``level`` by 1 (an
    :class:`EscapeKernel` that stops the fused run mid-block: a model's run, in miniature)."""

    type_name = "test.stepper"
    every = Param(init=100, kind=int, min=1, max=100000, live=False)
    in_ = Input()
    out = Output()

    def prepare(self, ctx: PrepareContext) -> None:
        self.cursor = np.zeros(2, np.int64)  # samples since the last step, samples of this block done
        self.level = np.zeros(1, np.float32)
        self.calls = 0

    def reset(self) -> None:
        self.cursor.fill(0)
        self.level.fill(0.0)
        self.calls = 0

    def step(self) -> None:
        self.level[0] += np.float32(1.0)
        self.calls += 1

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        for i in range(frames):
            outs.out[:, i] = ins.in_[:, i] + self.level[0]
            self.cursor[0] += 1
            if self.cursor[0] == self.every:
                self.cursor[0] = 0
                self.step()

    def kernel(self, ins: Ports, outs: Ports):
        lines = (
            "while {2}[1] < frames:",
            "    {m}i = {2}[1]",
            "    for {m}l in range({1}.shape[0]):",
            "        {1}[{m}l, {m}i] = {0}[{m}l, {m}i] + {3}[0]",
            "    {2}[1] = {m}i + 1",
            "    {2}[0] += 1",
            "    if {2}[0] == {4}:",
            "        {2}[0] = 0",
            "        {escape}",
            "{2}[1] = 0",
        )
        return EscapeKernel(lines, (ins.in_, outs.out, self.cursor, self.level, self.every), self.step)


class Allocating(Node):
    """Multiplies without ``out=``: allocates a temporary array every block (a planted bug)."""

    type_name = "test.allocating"
    in_ = Input()
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        outs.out[:] = ins.in_ * 0.5


class SmallAllocating(Node):
    """Passes its input through but makes a 1 KB scratch array every block (a planted bug that a
    byte tolerance hides under Python's own per-block objects)."""

    type_name = "test.allocating_1k"
    in_ = Input()
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        scratch = np.empty(256, np.float32)
        scratch[0] = 0.0
        np.copyto(outs.out, ins.in_)


class InputWriter(Node):
    """Tries to write into its input (forbidden: inputs are read-only views)."""

    type_name = "test.input_writer"
    in_ = Input()
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        ins.in_[...] = 0.0
        np.copyto(outs.out, ins.in_)


class Poison(Node):
    """Emits NaN, Inf and huge values."""

    type_name = "test.poison"
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        outs.out.fill(0.25)
        outs.out[:, 0] = np.nan
        outs.out[:, 1] = np.inf
        outs.out[:, 2] = 1e6
        outs.out[:, 3] = 1e-40


class Level(Node):
    """Control-rate constant source: repeats its ``value`` input, to test rate conversion."""

    type_name = "test.level"
    value = Input(rate=Rate.CONTROL, init=0.0)
    out = Output(rate=Rate.CONTROL, span=(0.0, 1.0))

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.copyto(outs.out, ins.value)


class ActivityProbe(Node):
    """Passes ``in`` through and keeps the lane-activity flags the compiler handed it."""

    type_name = "test.activity_probe"
    in_ = Input(init=0.0)
    out = Output(span=(-1.0, 1.0))

    def prepare(self, ctx: PrepareContext) -> None:
        self.active_lanes = ctx.active_lanes

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.copyto(outs.out, ins.in_)


class NanBurst(_BlockCounting):
    """Plays its input through, but emits NaN in blocks ``start`` .. ``start + count - 1``."""

    type_name = "test.nan_burst"
    start = Param(init=5, kind=int, min=0, max=100000)
    count = Param(init=6, kind=int, min=0, max=100000)
    in_ = Input()
    out = Output()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if self.start <= self.blocks < self.start + self.count:
            outs.out.fill(np.nan)
        else:
            np.copyto(outs.out, ins.in_)
        self.blocks += 1


ALL = [
    Impulse,
    Lanes,
    Latent,
    Raiser,
    KernelRaiser,
    Allocating,
    SmallAllocating,
    InputWriter,
    Poison,
    Level,
    ActivityProbe,
    NanBurst,
    Sleeper,
    Stepper,
]


@hookimpl
def ng_register_nodes(register) -> None:
    for cls in ALL:
        register(cls)
