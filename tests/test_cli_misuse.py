"""Every command, driven with wrong values as a new user would: each case exits 2 (a usage or input
error) or 1 (a failure while running) with one clear message naming what was wrong and what
would be valid, and never a traceback (issue 18, "The command line never shows a traceback").

The command line runs in-process (``neuralgraph._tools.cli.main``) to stay fast; the few cases that
need a real process (stdout on a full disk, an unreadable file for a non-root user) use one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from neuralgraph._tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAW = str(ROOT / "graphs" / "saw_chord.toml")  # plays on its own
POLY = str(ROOT / "graphs" / "poly_saw.toml")  # takes MIDI
FX = str(ROOT / "graphs" / "fx_chain.toml")  # takes audio (io.input)
SUBTRACTIVE = str(ROOT / "graphs" / "subtractive.toml")
ARPEGGIO = str(ROOT / "examples" / "midi" / "arpeggio.mid")


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A working folder with the files the cases name: a folder, garbage, a 44.1 kHz WAV."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEURALGRAPH_SAMPLE_RATE", raising=False)
    monkeypatch.delenv("NEURALGRAPH_BUFFER_SIZE", raising=False)
    (tmp_path / "adir").mkdir()
    (tmp_path / "garbage.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage" * 3)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF....WAVEfmt nothing here")
    soundfile.write(tmp_path / "at44k.wav", np.zeros((4410, 2), np.float32), 44100)
    return tmp_path


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


# (argv, exit code, a regex the message must match)
CASES = [
    # -- files that are missing, folders, garbage
    (["render", "nosuch.toml"], 2, r"nosuch.toml: NG101 no such patch file"),
    (["render", "adir"], 2, r"adir: NG101 cannot read the patch: .*Is a directory"),
    (["check", "garbage.mid"], 2, r"garbage.mid:1:\d+: NG10[01] "),
    (["graph", "nosuch.toml"], 2, r"NG101 no such patch file"),
    (["bench", "adir"], 2, r"NG101 cannot read the patch"),
    (["play", "nosuch.toml"], 2, r"NG101 no such patch file"),
    # unreadable files (reading /proc/self/mem at offset 0 fails with EIO, even for root)
    (["check", "/proc/self/mem"], 2, r"/proc/self/mem: NG101 cannot read the patch: \[Errno 5\] Input/output error"),
    (
        ["render", POLY, "--midi", "/proc/self/mem", "-o", "x.wav"],
        2,
        r"/proc/self/mem: not a readable standard MIDI file \(\[Errno 5\] Input/output error\)",
    ),
    (["render", FX, "--input", "/proc/self/mem", "-o", "x.wav"], 2, r"cannot read /proc/self/mem: "),
    (["render", POLY, "--midi", "nosuch.mid"], 2, r"--midi nosuch.mid: no such file"),
    (["render", POLY, "--midi", "adir"], 2, r"--midi adir: is a directory, not a file"),
    (["render", POLY, "--midi", "garbage.mid", "-o", "x.wav"], 2, r"garbage.mid: not a readable standard MIDI file"),
    (["render", FX, "--input", "nosuch.wav"], 2, r"--input nosuch.wav: no such file"),
    (["render", FX, "--input", "garbage.wav", "-o", "x.wav"], 2, r"cannot read garbage.wav: "),
    (
        ["render", FX, "--input", "at44k.wav", "-o", "x.wav"],
        2,
        r"at 44100 Hz but the engine runs at 48000 Hz \(resample it, or render with --sample-rate 44100\)",
    ),
    # -- inputs the patch cannot use
    (
        ["render", SUBTRACTIVE, "--midi", ARPEGGIO],
        2,
        r"has no MIDI input, so the file would be ignored \(the patch's inputs: none",
    ),
    (["render", SAW, "--input", "at44k.wav"], 2, r"has no io.input node, so the file would be ignored"),
    # -- outputs
    (["render", SAW, "-o", "x.mp4", "--seconds", "1"], 2, r"'.mp4', not an audio format .*formats that work: "),
    (["render", SAW, "-o", "nosuch/x.wav"], 2, r"the folder nosuch does not exist"),
    (["render", SAW, "-o", "adir"], 2, r"cannot write adir: it is a directory"),
    (["render", SAW, "-o", "/dev/full"], 2, r"not a regular file"),
    (
        ["render", SAW, "-o", "x.flac", "--bits", "float"],
        2,
        r"FLAC cannot hold --bits float samples \(valid for FLAC: 16, 24\)",
    ),
    (["render", SAW, "--bits", "8"], 2, r"argument --bits: invalid choice: '8' \(choose from"),
    (
        ["render", SAW, "--plot", "x.xyz", "--seconds", "1"],
        2,
        r"--plot x.xyz: .xyz is not a picture format; formats that work: ",
    ),
    (["render", SAW, "--plot", "nosuch/x.png"], 2, r"--plot nosuch/x.png: the folder nosuch does not exist"),
    (["graph", SAW, "-o", "x.xyz"], 2, r"cannot tell the drawing format from '.xyz'; use one of .dot"),
    (["graph", SAW, "-o", "nosuch/x.svg"], 2, r"the folder nosuch does not exist"),
    (["graph", SAW, "-o", "/dev/full"], 2, r"not a regular file"),
    # -- wrong types and out-of-range numbers
    (["render", SAW, "--seconds", "abc"], 2, r"argument --seconds: invalid float value: 'abc'"),
    (["render", SAW, "--seconds", "-1"], 2, r"--seconds must be a finite number > 0, got -1"),
    (["render", SAW, "--seconds", "0"], 2, r"--seconds must be a finite number > 0, got 0"),
    (["render", SAW, "--seconds", "nan"], 2, r"--seconds must be a finite number > 0, got nan"),
    (["render", SAW, "--seconds", "1e9"], 2, r"more than the limit of 3600 s; raise it on purpose with --max-seconds"),
    (["render", POLY, "--midi", ARPEGGIO, "--tail", "-5"], 2, r"--tail must be a finite number >= 0, got -5"),
    (["render", SAW, "--max-seconds", "0"], 2, r"--max-seconds must be a finite number > 0, got 0"),
    (["render", SAW, "--sample-rate", "0"], 2, r"--sample-rate 0 is out of range \(valid: 8000..384000\)"),
    (["render", SAW, "--sample-rate", "-1"], 2, r"--sample-rate -1 is out of range \(valid: 8000..384000\)"),
    (["render", SAW, "--sample-rate", "44.1k"], 2, r"argument --sample-rate: invalid int value: '44.1k'"),
    (["check", SAW, "--block-size", "0"], 2, r"--block-size 0 is out of range \(valid: 1..16384\)"),
    (["bench", SAW, "--block-size", "100000"], 2, r"--block-size 100000 is out of range \(valid: 1..16384\)"),
    (["render", SAW, "--max-nodes", "0"], 2, r"max_nodes must be a whole number of at least 1, not 0"),
    (["check", SAW, "--memory-budget-mb", "-5"], 2, r"memory_budget_mb must be a whole number of at least 1, not -5"),
    (["bench", SAW, "--seconds", "0"], 2, r"--seconds must be a finite number > 0, got 0"),
    (["bench", SAW, "--notes", "-1"], 2, r"--notes must be a finite number >= 0, got -1"),
    (["play", SAW, "--seconds", "-1"], 2, r"--seconds must be a finite number > 0, got -1"),
    (["play", SAW, "--osc-port", "99999"], 2, r"--osc-port 99999 is not a UDP port \(valid: 0..65535"),
    # -- --set
    (["render", SAW, "--set", "oops"], 2, r"--set oops: expected node.param=VALUE"),
    (["check", SAW, "--set", "nosuch.freq=1"], 2, r"NG130 .*no node `nosuch` in the patch"),
    (["check", SAW, "--set", "root.freq=abc"], 2, r"\(from --set root.freq\) `abc`: there is no node `abc`"),
    (
        ["check", SAW, "--set", "root.freq=1e6"],
        2,
        r"NG113 nodes.root.freq: \(from --set root.freq\) 1000000.0 .*valid: ",
    ),
    (
        ["check", SAW, "--set", "root.fraq=5"],
        2,
        r"\(from --set root.fraq\) .*no parameter or input `fraq` \(did you mean `freq`",
    ),
    # -- unknown names: node types, backends, devices
    (["nodes", "osc.sawx"], 2, r"no node type 'osc.sawx' \(did you mean `osc.saw`"),
    (
        ["play", SAW, "--backend", "nosuch", "--seconds", "0.1"],
        2,
        r"no audio backend 'nosuch' \(available: jack, sounddevice\)",
    ),
    (
        ["play", SAW, "--device", "no such device", "--seconds", "0.1"],
        1,
        r"sounddevice: no output device 'no such device' .*output devices: .*pick one with --device N",
    ),
    (
        ["play", SAW, "--backend", "jack", "--device", "nosuchserver", "--seconds", "0.1"],
        1,
        r"cannot connect to a JACK server named 'nosuchserver': .*is jackd running\?",
    ),
    (
        ["play", SAW, "--device", "99", "--seconds", "0.1"],
        1,
        r"sounddevice: no output device 99 \(Error querying device 99\); output devices: ",
    ),
    # -- commands and flags that do not exist
    (["rendr", SAW], 2, r"invalid choice: 'rendr'"),
    (["render"], 2, r"the following arguments are required: patch"),
    (["render", SAW, "--secs", "1"], 2, r"unrecognized arguments: --secs 1"),
]


@pytest.mark.parametrize(("argv", "code", "message"), CASES, ids=[" ".join(Path(a).name for a in c[0]) for c in CASES])
def test_wrong_values_give_one_clear_message_and_the_right_exit_code(work, capsys, argv, code, message):
    got, err = run(argv, capsys)
    assert "Traceback" not in err
    assert got == code, err
    assert re.search(message, err), err
    lines = [line for line in err.splitlines() if line.strip()]
    messages = [line for line in lines if line.startswith("neuralgraph: ") and "warning" not in line]
    problems = [line for line in lines if re.search(r": NG\d{3} ", line)]
    assert len(messages) == 1 or problems or err.startswith("usage:"), err  # one message, or the problem list
    assert not (tuple(work.glob("*.partial*")) or tuple(work.glob(".*.partial"))), "a render left a temporary file"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"NEURALGRAPH_SAMPLE_RATE": "0"}, r"NEURALGRAPH_SAMPLE_RATE=0 is out of range \(valid: 8000..384000\)"),
        ({"NEURALGRAPH_BUFFER_SIZE": "-1"}, r"NEURALGRAPH_BUFFER_SIZE=-1 is out of range \(valid: 1..16384\)"),
        ({"NEURALGRAPH_BUFFER_SIZE": "big"}, r"NEURALGRAPH_BUFFER_SIZE='big' is not an integer"),
        (
            {"NEURALGRAPH_PLUGINS": "nope"},
            r"NEURALGRAPH_PLUGINS='nope' names plugins that are not installed: nope "
            r"\(installed: .*oscillators",
        ),
        ({"NEURALGRAPH_MAX_NODES": "many"}, r"NEURALGRAPH_MAX_NODES='many' is not an integer"),
        ("[audio]\nbuffer_size = 0\n", r"config.toml: \[audio\] buffer_size = 0 is out of range \(valid: 1..16384\)"),
        ("[audio]\nsample_rate = 0\n", r"config.toml: \[audio\] sample_rate = 0 is out of range"),
        ("[audio\n", r"config.toml: "),
        ("[limits]\nmax_render_seconds = 0\n", r"max_render_seconds must be a whole number of at least 1, not 0"),
    ],
)
def test_bad_settings_in_the_environment_or_config_are_usage_errors(work, capsys, monkeypatch, setting, message):
    from neuralgraph._plugins.registry import default_registry

    if isinstance(setting, dict):
        for key, value in setting.items():
            monkeypatch.setenv(key, value)
    else:
        (work / "config.toml").write_text(setting)
    default_registry.cache_clear()
    try:
        code, err = run(["render", SAW, "-o", "x.wav", "--seconds", "0.1", "-q"], capsys)
    finally:
        default_registry.cache_clear()
    assert "Traceback" not in err
    assert code == 2 and re.search(message, err), err


def test_a_patch_that_needs_an_input_warns_when_none_is_given(work, capsys):
    code, err = run(["render", POLY, "--seconds", "0.1", "-q", "-o", "x.wav"], capsys)
    assert code == 0
    assert "warning: " in err and "takes MIDI (keys.midi) but no --midi file was given: it renders without notes" in err
    code, err = run(["render", FX, "--seconds", "0.1", "-q", "-o", "x.wav"], capsys)
    assert code == 0
    assert re.search(r"takes audio \(\w+, io.input\) but no --input file was given: its input is silence", err), err
    code, err = run(["render", SAW, "--seconds", "0.1", "-q", "-o", "x.wav"], capsys)
    assert code == 0 and err == ""


def test_stdout_on_a_full_disk_is_one_message(work):
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "neuralgraph", "check", SAW],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1
    assert run.stderr == "neuralgraph: cannot write to standard output: No space left on device\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_patch_and_midi_file(work, capsys):
    locked = work / "locked.toml"
    locked.write_text("schema = 1\n")
    locked.chmod(0)
    code, err = run(["check", str(locked)], capsys)
    assert code == 2 and "NG101 cannot read the patch: [Errno 13] Permission denied" in err
    (work / "locked.mid").write_bytes(b"")
    (work / "locked.mid").chmod(0)
    code, err = run(["render", POLY, "--midi", "locked.mid"], capsys)
    assert code == 2 and "--midi locked.mid: permission denied" in err


def test_nodes_prints_plain_text_not_restructuredtext(capsys):
    assert main(["nodes"]) == 0
    listing = capsys.readouterr().out
    assert "``" not in listing and ":class:" not in listing
    assert "`rise_per_s`" in listing  # control.slew's docstring, its code span kept readable
    assert main(["nodes", "control.slew"]) == 0
    assert "``" not in capsys.readouterr().out


def test_plot_of_a_silent_render_prints_no_numpy_warning(work, capsys):
    pytest.importorskip("matplotlib")
    silent = work / "silent.toml"
    silent.write_text('schema = 1\n[nodes.out]\ntype = "io.output"\nin = 0.0\n')
    code, err = run(["render", str(silent), "--seconds", "0.5", "-q", "--plot", "s.png"], capsys)
    assert code == 0 and err == "", err
    assert (work / "s.png").read_bytes()[:4] == b"\x89PNG"
