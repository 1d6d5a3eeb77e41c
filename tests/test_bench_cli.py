"""``neuralgraph bench``: the real-time factor line and every step's cost, sorted; the timed run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent
P2 = ROOT / "graphs" / "bench" / "p2_fm.toml"


def neuralgraph(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuralgraph", *args], capture_output=True, text=True)


def test_bench_prints_rt_factor_and_every_node_sorted_by_cost():
    run = neuralgraph("bench", str(P2), "--seconds", "0.2", "--block-size", "64", "--notes", "4", "--no-fuse")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert re.fullmatch(r".*p2_fm\.toml: 48000 Hz, block 64, 150 blocks \(0\.20 s of audio\)", lines[0])
    assert re.fullmatch(r"real-time factor: \d+(\.\d)?x", lines[1])
    assert re.fullmatch(r"CPU per block: \d+\.\d\d µs of 1333\.3 µs \(\d+\.\d\d% of one core\)", lines[2])
    rows = [re.fullmatch(r"  (\S.*?)\s+(\S+)\s+(\d+\.\d\d)\s+(\d+\.\d)%", line) for line in lines[5:]]
    assert all(rows), lines[5:]
    names = [m.group(1) for m in rows]
    expected = {
        "keys",
        "mod_freq",
        "depth",
        "mod",
        "dev",
        "car",
        "mix",
        "master",
        "out",
        "car.freq (mix)",
        "(output guard)",
    }
    assert sorted(names) == sorted(expected)  # every node once, plus the compiler's steps
    kinds = {m.group(1): m.group(2) for m in rows}
    assert kinds["car"] == "osc.sine" and kinds["keys"] == "voices.fixed" and kinds["car.freq (mix)"] == "compiler"
    costs = [float(m.group(3)) for m in rows]
    assert costs == sorted(costs, reverse=True)
    assert abs(sum(float(m.group(4)) for m in rows) - 100.0) < 0.5 + 0.05 * len(rows)


def test_bench_fused_names_each_member_of_the_fused_run_with_its_cost():
    run = neuralgraph("bench", str(P2), "--seconds", "0.2", "--block-size", "64")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1].startswith("* ran inside a fused run")
    rows = [re.fullmatch(r"  (\S.*?)\s+(\S+)\s+(\d+\.\d\d)\s+(\d+\.\d)%", line) for line in lines[5:-1]]
    assert all(rows), lines
    kinds = {m.group(1): m.group(2) for m in rows}
    # one fused run (keys ... out), reported member by member, and the output guard
    assert kinds == {
        "keys": "voices.fixed*",
        "mod_freq": "math.mul*",
        "depth": "math.mul*",
        "mod": "osc.sine*",
        "dev": "math.mul*",
        "car.freq (mix)": "compiler*",
        "car": "osc.sine*",
        "mix": "voices.sum*",
        "master": "math.mul*",
        "out": "io.output*",
        "(output guard)": "compiler",
    }


def test_bench_finds_the_expensive_node_inside_a_fused_run(tmp_path):
    """A 64-lane sine among one-lane nodes in one fused run: the profile build names it first."""
    patch = tmp_path / "one_heavy.toml"
    patch.write_text("""schema = 1
[nodes.keys]
type = "voices.fixed"
count = 64
start = 100.0
step = 10.0
[nodes.cheap1]
type = "math.mul"
in = "lead"
gain = 0.5
[nodes.lead]
type = "osc.sine"
freq = 220.0
[nodes.heavy]
type = "osc.sine"
freq = "keys"
[nodes.sum]
type = "voices.sum"
in = "heavy"
[nodes.cheap2]
type = "math.mul"
in = ["sum", "cheap1"]
gain = 0.01
[nodes.out]
type = "io.output"
channels = 1
in = "cheap2"
""")
    run = neuralgraph("bench", str(patch), "--seconds", "0.5", "--block-size", "64")
    assert run.returncode == 0, run.stderr
    rows = [
        re.fullmatch(r"  (\S.*?)\s+(\S+)\s+(\d+\.\d\d)\s+(\d+\.\d)%", line) for line in run.stdout.splitlines()[5:-1]
    ]
    assert all(rows), run.stdout
    assert (rows[0].group(1), rows[0].group(2)) == ("heavy", "osc.sine*"), run.stdout
    assert float(rows[0].group(4)) > 3 * float(rows[1].group(4)), run.stdout  # far ahead of the next


def test_bench_rejects_a_non_positive_length():
    run = neuralgraph("bench", str(P2), "--seconds", "0")
    assert run.returncode == 2
    assert "--seconds must be a finite number > 0, got 0" in run.stderr


def test_timed_block_sounds_the_same_and_times_every_step():
    patch = ng.load_patch(P2)
    plain = ng.Engine(patch, sample_rate=48000, block_size=64)
    timed = ng.Engine(patch, sample_rate=48000, block_size=64)
    for engine in (plain, timed):
        engine.note_on(60)
        engine.note_on(67)
    elapsed = np.zeros(len(timed.plan.steps) + 1, np.int64)
    for _ in range(20):
        a = plain.process().copy()
        timed.apply_commands()
        b = timed.plan.run_block_timed(elapsed)
        assert np.array_equal(a, b)
    assert np.abs(a).max() > 0.01  # the notes sound
    assert (elapsed > 0).all()
