"""The README's main command, the docs' error table, configuration precedence, CLI basics."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from analysis import level_at, peaks

from neuralgraph._errors import CODES
from neuralgraph._patch.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def neuralgraph(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuralgraph", *args], capture_output=True, text=True, cwd=cwd)


def test_readme_render_writes_the_chord_the_patch_asks_for(tmp_path):
    out = tmp_path / "chord.wav"
    run = neuralgraph("render", str(ROOT / "graphs" / "saw_chord.toml"), "-o", str(out), "--seconds", "2")
    assert run.returncode == 0, run.stderr
    assert re.search(r"rendered in .* \(\d+(\.\d+)?x real time\)", run.stdout)
    audio, rate = soundfile.read(out, always_2d=True)
    assert rate == 48000 and audio.shape == (96000, 2)
    # A3, C#4, E4 (the patch's three saws) are the three strongest partials
    assert peaks(audio[:, 0], rate, 3) == pytest.approx([220.0, 277.18, 329.63], abs=1.0)
    # the saws' levels follow the mix gains 1, 0.8, 0.7
    root, third = level_at(audio[:, 0], rate, 220.0), level_at(audio[:, 0], rate, 277.18)
    assert third / root == pytest.approx(0.8, rel=0.1)
    assert np.array_equal(audio[:, 0], audio[:, 1])
    assert 0.05 < np.max(np.abs(audio)) < 1.0


def test_render_options_set_rate_block_and_overrides(tmp_path):
    out = tmp_path / "x.wav"
    run = neuralgraph(
        "render",
        str(ROOT / "graphs" / "saw_chord.toml"),
        "-o",
        str(out),
        "--seconds",
        "1",
        "--sample-rate",
        "44100",
        "--block-size",
        "64",
        "--set",
        "root.freq=110",
        "--bits",
        "16",
    )
    assert run.returncode == 0, run.stderr
    info = soundfile.info(out)
    assert (info.samplerate, info.frames, info.subtype) == (44100, 44100, "PCM_16")
    audio, rate = soundfile.read(out)
    assert 110.0 in [round(f) for f in peaks(audio[:, 0], rate, 3)]


def test_check_prints_order_buffers_and_latency():
    run = neuralgraph("check", str(ROOT / "graphs" / "saw_chord.toml"))
    assert run.returncode == 0
    assert "order (7 nodes): root -> third -> fifth -> chord -> lfo -> swell -> out" in run.stdout
    assert re.search(r"buffers: \d+ in one slab", run.stdout) and "latency: 0 samples" in run.stdout


def test_nodes_describes_a_type():
    run = neuralgraph("nodes", "osc.saw")
    assert run.returncode == 0 and "freq" in run.stdout and "Hz" in run.stdout
    run = neuralgraph("nodes", "osc.sawx")
    assert run.returncode == 2 and "did you mean `osc.saw`" in run.stderr


def test_every_error_code_is_documented():
    text = (ROOT / "docs" / "patch-format.md").read_text()
    for code, meaning in CODES.items():
        assert f"| `{code}` | {meaning} |" in text


def test_config_file_then_environment_precedence(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[audio]\nbackend = "jack"\nbuffer_size = 256\n')
    assert load_settings(environ={}, paths=[config]) == {"backend": "jack", "buffer_size": 256}
    env = {"NEURALGRAPH_BUFFER_SIZE": "64", "NEURALGRAPH_AUDIO_BACKEND": "sounddevice"}
    assert load_settings(environ=env, paths=[config]) == {"backend": "sounddevice", "buffer_size": 64}


def test_config_errors_name_the_file_and_key(tmp_path):
    from neuralgraph.plugin import NeuralgraphError

    config = tmp_path / "config.toml"
    config.write_text("[audio]\nbufer_size = 256\n")
    with pytest.raises(NeuralgraphError, match=r"config.toml: unknown setting audio.bufer_size"):
        load_settings(environ={}, paths=[config])
    with pytest.raises(NeuralgraphError, match="NEURALGRAPH_BUFFER_SIZE='big' is not an integer"):
        load_settings(environ={"NEURALGRAPH_BUFFER_SIZE": "big"}, paths=[])


def test_config_block_size_reaches_render(tmp_path):
    (tmp_path / "config.toml").write_text("[audio]\nbuffer_size = 32\n")
    run = neuralgraph(
        "render", str(ROOT / "graphs" / "saw_chord.toml"), "-o", "x.wav", "--seconds", "0.1", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "block 32" in run.stdout
    run = neuralgraph(
        "render",
        str(ROOT / "graphs" / "saw_chord.toml"),
        "-o",
        "x.wav",
        "--seconds",
        "0.1",
        "--block-size",
        "16",
        cwd=tmp_path,
    )
    assert "block 16" in run.stdout


def test_plugin_tutorial_shows_the_example_files_verbatim():
    doc = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```(?:toml|python)\n(.*?)```", doc, re.S)
    example = ROOT / "examples" / "bitcrush"
    for name in ("pyproject.toml", "ng_bitcrush/__init__.py", "crushed_sine.toml", "tests/test_bitcrush.py"):
        assert (example / name).read_text() in blocks, f"docs/plugins.md does not show {name} as it is"
