"""Long renders: streamed to disk with flat memory, written atomically, interruptible without
harm, with progress lines and a length cap (issue 18, "Long renders", hostile items 3 and 7)."""

from __future__ import annotations

import io
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

import neuralgraph as ng
from neuralgraph._tools.cli import main
from neuralgraph._tools.progress import RenderProgress
from neuralgraph._tools.render_file import Terminated, check_target, render_interrupts, render_to_file

ROOT = Path(__file__).resolve().parent.parent
#: A cheap stereo patch: the memory a render needs is the audio it holds, not the nodes.
SINE = """schema = 1
[engine]
block_size = 1024
[nodes.osc]
type = "osc.sine"
freq = 441.0
[nodes.out]
type = "io.output"
channels = 2
in = { from = "osc", range = [-0.5, 0.5] }
"""


@pytest.fixture
def sine(tmp_path) -> Path:
    path = tmp_path / "sine.toml"
    path.write_text(SINE, encoding="utf-8")
    return path


def existing_wav(path: Path) -> bytes:
    """An 'earlier take' at ``path``: 0.1 s of a distinctive ramp; returns its bytes."""
    soundfile.write(path, np.linspace(-0.25, 0.25, 4800, dtype=np.float32), 48000, subtype="FLOAT")
    return path.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "neuralgraph", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


# ---- streaming ------------------------------------------------------------------------------
def test_streamed_file_equals_the_in_memory_render(sine, tmp_path):
    patch = ng.load_patch(sine)
    audio = ng.Engine(patch).render(1.01)
    target = check_target(tmp_path / "s.wav")
    result = render_to_file(ng.Engine(patch), target, 1.01)
    written, rate = soundfile.read(tmp_path / "s.wav", dtype="float32", always_2d=True)
    assert rate == 48000 and result.frames == audio.shape[1] == 48480  # the last block is cut short
    assert np.array_equal(written.T, audio)
    assert (tmp_path / "s.wav").stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's private 0600
    assert leftovers(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


PEAK = (
    "import resource, sys\nfrom neuralgraph._tools.cli import main\n"
    "rc = main(sys.argv[1:])\nprint(rc, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def peak_rss_kb(*args: str) -> int:
    run = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, timeout=120)
    rc, kb = run.stdout.split()[-2:]
    assert rc == "0", run.stderr
    return int(kb)


def test_peak_memory_does_not_grow_with_the_length_of_the_render(sine, tmp_path):
    out = str(tmp_path / "long.wav")
    short = peak_rss_kb("render", str(sine), "-o", out, "--seconds", "20", "-q")
    long = peak_rss_kb("render", str(sine), "-o", out, "--seconds", "200", "-q")
    # 180 s more of stereo float32 is 69 MB of audio (138 MB with the old transposed copy)
    assert soundfile.info(out).frames == 200 * 48000
    assert long - short < 12 * 1024, (short, long)


# ---- checked before rendering ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("nosuch/x.wav", r"the folder nosuch does not exist"),
        ("x.mp4", r"'.mp4', not an audio format .*formats that work: \.wav, \.flac"),
        ("x", r"has no file extension.*formats that work: \.wav"),
        (".", r"is a directory"),
        ("/dev/full", r"not a regular file"),
    ],
)
def test_a_bad_output_is_refused_before_anything_renders(sine, tmp_path, monkeypatch, capsys, output, message):
    monkeypatch.chdir(tmp_path)
    # an hour would take minutes: a quick refusal shows the check comes first
    assert main(["render", str(sine), "-o", output, "--seconds", "3600"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "rendering" not in err and "Traceback" not in err


def test_formats_follow_the_extension_and_bits(sine, tmp_path, capsys):
    assert main(["render", str(sine), "-o", str(tmp_path / "x.flac"), "--seconds", "0.2", "-q"]) == 0
    assert soundfile.info(tmp_path / "x.flac").subtype == "PCM_16"  # FLAC holds no float: its default
    assert main(["render", str(sine), "-o", str(tmp_path / "x.flac"), "--seconds", "0.2", "--bits", "float"]) == 2
    assert "FLAC cannot hold --bits float samples (valid for FLAC: 16, 24)" in capsys.readouterr().err
    assert main(["render", str(sine), "-o", str(tmp_path / "x.ogg"), "--seconds", "0.2", "--bits", "16"]) == 2
    assert "--bits does not apply to OGG" in capsys.readouterr().err


def test_a_read_only_folder_is_refused(sine, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    assert main(["render", str(sine), "-o", str(folder / "x.wav"), "--seconds", "1"]) == 2
    assert "no permission to create files in" in capsys.readouterr().err


# ---- failures and interruptions never destroy the existing file -------------------------------
def test_a_failed_write_keeps_the_existing_file_and_says_why(sine, tmp_path):
    """Hostile item 3: ``ulimit -f 200`` during a render over an existing WAV."""
    out = tmp_path / "take.wav"
    before = existing_wav(out)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200 * 1024, resource.RLIM_INFINITY))

    run = subprocess.run(
        [sys.executable, "-m", "neuralgraph", "render", str(sine), "-o", str(out), "--seconds", "10", "-q"],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=60,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert re.search(
        r"writing .*take.wav failed after \d+ frames: .*ulimit -f\) is 204800 bytes; "
        r".*take.wav left unchanged",
        run.stderr,
    ), run.stderr
    assert out.read_bytes() == before
    assert leftovers(tmp_path) == []


def wait_for_progress(proc: subprocess.Popen, percent: int) -> None:
    """Read progress lines (stderr is a pipe, so they are plain lines) until ``percent`` is reached."""
    for line in proc.stderr:
        m = re.search(r": +(\d+)% \(", line)
        if m and int(m[1]) >= percent:
            return
    raise AssertionError("the render ended before the progress line")


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")]
)
def test_an_interrupted_render_leaves_the_existing_file_untouched(sine, tmp_path, sig, code, word):
    out = tmp_path / "take.wav"
    before = existing_wav(out)
    proc = cli("render", str(sine), "-o", str(out), "--seconds", "3000", "--max-seconds", "3000")
    wait_for_progress(proc, 10)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"{word}; " in err and "take.wav left unchanged" in err and "Traceback" not in err
    assert out.read_bytes() == before
    assert leftovers(tmp_path) == []


def uninterrupted_blocks(patch: Path, frames: int, block: int = 48000):
    """The first ``frames`` of an uninterrupted in-process render of ``patch``, in (block, channels)
    chunks as soundfile reads them (streamed: a 300 s render stays out of memory)."""
    engine = ng.Engine(ng.load_patch(patch), sample_rate=48000)
    pending = np.empty((0, engine.channels), np.float32)
    for out in engine.stream(frames / 48000):
        pending = np.concatenate([pending, out.T])
        while len(pending) >= block:
            yield pending[:block]
            pending = pending[block:]
    if len(pending):
        yield pending


def test_keep_partial_keeps_a_valid_file_of_what_was_rendered(sine, tmp_path):
    out = tmp_path / "take.wav"
    before = existing_wav(out)
    proc = cli("render", str(sine), "-o", str(out), "--seconds", "3000", "--max-seconds", "3000", "--keep-partial")
    wait_for_progress(proc, 10)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    kept = tmp_path / "take.partial.wav"
    m = re.search(r"take.partial.wav holds the ([\d.]+) s \((\d+) frames\) rendered", err)
    assert m, err
    reported = int(m[2])
    assert float(m[1]) == pytest.approx(reported / 48000, abs=0.005) and reported >= 300 * 48000
    # exactly the frames reported, even when SIGTERM arrives while a block is being written
    assert soundfile.info(kept).frames == reported
    expected = uninterrupted_blocks(sine, reported)
    for got in soundfile.blocks(kept, blocksize=48000, dtype="float32", always_2d=True):
        assert np.array_equal(got, next(expected))  # the start of the same render, sample for sample
    assert next(expected, None) is None
    assert out.read_bytes() == before


def test_a_signal_during_a_block_write_is_raised_once_the_write_is_counted():
    steps = []
    before = signal.getsignal(signal.SIGTERM)
    with render_interrupts() as interrupts, pytest.raises(Terminated):
        with interrupts.held():
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, between bytecodes
            time.sleep(0.05)
            steps.append("written and counted")
        steps.append("after the write")
    assert steps == ["written and counted"]
    assert signal.getsignal(signal.SIGTERM) is before  # the host's handler is back


# ---- progress --------------------------------------------------------------------------------
def test_progress_lines_off_a_terminal_carry_percent_speed_and_eta(sine, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "neuralgraph", "render", str(sine), "-o", str(tmp_path / "p.wav"), "--seconds", "20"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in run.stderr.splitlines() if "% (" in line]
    assert [int(re.search(r"(\d+)% \(", line)[1]) for line in lines] == list(range(10, 101, 10))
    assert all(re.search(r"\d+\.\dx real time, ETA \d:\d\d:\d\d$", line) for line in lines), lines
    quiet = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuralgraph",
            "render",
            str(sine),
            "-o",
            str(tmp_path / "p.wav"),
            "--seconds",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_the_terminal_bar_shows_the_time_left():
    stream = io.StringIO()
    progress = RenderProgress("rendering x", 10.0, stream=stream, tty=True)
    for second in range(1, 11):
        time.sleep(0.05)  # tqdm redraws at most every 0.1 s
        progress.update(float(second))
    progress.close()
    text = stream.getvalue()
    assert "rendering x:" in text and "s audio" in text and re.search(r"\d\d:\d\d<\d\d:\d\d", text), text


# ---- the length cap (hostile item 7) -----------------------------------------------------------
def test_a_one_note_ten_hour_midi_file_is_refused_before_starting(tmp_path, capsys):
    import mido

    song = mido.MidiFile()
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.Message("note_on", note=60, velocity=100, time=song.ticks_per_beat * 2 * 60 * 60 * 10))
    track.append(mido.Message("note_off", note=60, time=10))
    midi = tmp_path / "late.mid"
    song.save(midi)
    assert midi.stat().st_size < 64
    code = main(["render", str(ROOT / "graphs" / "poly_saw.toml"), "--midi", str(midi), "-o", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(
        r"the render would be 3600\d\.\d s long \(.*late.mid plus --tail 2\), more than the limit "
        r"of 3600 s; raise it on purpose with --max-seconds",
        err,
    ), err
    assert not (tmp_path / "x.wav").exists()


def test_seconds_1e9_is_refused_and_the_limit_comes_from_config(sine, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(sine), "--seconds", "1e9"]) == 2
    assert "more than the limit of 3600 s" in capsys.readouterr().err
    (tmp_path / "config.toml").write_text("[limits]\nmax_render_seconds = 1\n")
    assert main(["render", str(sine), "--seconds", "2"]) == 2
    assert "the render would be 2.0 s long (--seconds 2), more than the limit of 1 s" in capsys.readouterr().err
    assert main(["render", str(sine), "--seconds", "2", "--max-seconds", "2", "-q"]) == 0
