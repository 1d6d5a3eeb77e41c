"""Build a patch in Python (a dict, the same shape as a TOML file) and render it to a WAV file.

    python examples/patch_from_code.py -o pad.wav --seconds 3 --freq 110

Two detuned saws and a sub-octave sine, through a lowpass whose cutoff a slow LFO sweeps,
with a gentle fade-in from an attack-release envelope held open for the whole render.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import soundfile

import neuralgraph as ng


def make_patch(freq: float, detune_cents: float = 8.0) -> dict[str, Any]:
    """A patch as plain data: ``nodes`` maps names to tables with ``type`` plus inputs and parameters."""
    ratio = 2.0 ** (detune_cents / 1200.0)
    return {
        "schema": 1,
        "name": f"Code pad at {freq:g} Hz",
        "engine": {"sample_rate": 48000, "block_size": 128},
        "nodes": {
            "saw_a": {"type": "osc.saw", "freq": freq},
            "saw_b": {"type": "osc.saw", "freq": freq * ratio},
            "sub": {"type": "osc.sine", "freq": freq / 2.0},
            "voices": {
                "type": "mix",
                "count": 3,
                "in_1": "saw_a",
                "in_2": "saw_b",
                "in_3": "sub",
                "gain_3": 0.8,
                "level": 0.25,
            },
            "sweep": {"type": "lfo", "rate": 0.2},
            "lpf": {
                "type": "filter.lowpass",
                "in": "voices",
                "q": 1.5,
                "cutoff": {"from": "sweep", "range": [400.0, 3000.0], "curve": "exp"},
            },
            "fade": {"type": "env.ar", "gate": 1.0, "attack_ms": 300.0},
            "vca": {"type": "math.mul", "in": "lpf", "gain": "fade"},
            "out": {"type": "io.output", "channels": 2, "in": "vca"},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="code_pad.wav", help="WAV file to write (code_pad.wav)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the render (3)")
    parser.add_argument("--freq", type=float, default=110.0, help="pitch of the saws in Hz (110)")
    args = parser.parse_args(argv)

    patch = ng.load_patch(make_patch(args.freq))  # raises ng.PatchError listing every problem
    engine = ng.Engine(patch)
    audio = engine.render(args.seconds)  # float32 (channels, frames)
    soundfile.write(args.output, audio.T, engine.sample_rate)
    peak = float(abs(audio).max())
    print(f"wrote {Path(args.output).name}: {patch.name!r}, {args.seconds:g} s, peak {peak:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
