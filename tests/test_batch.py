"""neuralgraph batch: a real job rendered, measured, resumed, killed, and run on a real Ray cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import soundfile
from analysis import peak_frequency, rms
from helpers import patch_toml

import neuralgraph as ng
from neuralgraph import JobError, NeuralgraphError, load_job, run_batch
from neuralgraph._tools.batch.render import encode_audio
from neuralgraph._tools.batch.space import render_at

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
PATCH = patch_toml(
    name="batch sine",
    sample_rate=16000,
    block_size=64,
    spaced=True,
    nodes="""[nodes.keys]
type = "midi.voices"
count = 1

[nodes.env]
type = "env.adsr"
gate = "keys.gate"
attack_ms = 2.0
decay_ms = 1.0
sustain = 1.0
release_ms = 5.0

[nodes.osc]
type = "osc.sine"
freq = {freq}

[nodes.vca]
type = "math.mul"
in = "osc"
gain = "env"

[nodes.amp]
type = "fx.gain"
in = "vca"
gain_db = -6.0

[nodes.out]
type = "io.output"
channels = 1
in = "amp"
""",
)
JOB = """patch = "sine.toml"
seconds = {seconds}
seed = 7

[params]
"osc.freq" = [220, 330, 440]
"amp.gain_db" = [-20.0, -12.0, -6.0]

[midi]
files = "midi/*.mid"

[outputs]
audio = "flac"
taps = ["env.out"]
"""
NOTES = {"a.mid": (0.1, 0.6), "b.mid": (0.3, 0.9)}  # note on, note off (seconds)
VOLATILE = {"render_s", "worker"}  # the only metadata that may differ between runs


def write_midi(path: Path, on: float, off: float, note: int = 69) -> None:
    song = mido.MidiFile(type=0, ticks_per_beat=480)  # 120 BPM: 960 ticks per second
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.Message("note_on", note=note, velocity=100, time=round(on * 960)))
    track.append(mido.Message("note_off", note=note, velocity=0, time=round(off * 960) - round(on * 960)))
    song.save(path)


def make_job(folder: Path, seconds: float = 1.0, name: str = "job.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sine.toml").write_text(PATCH.format(freq=440.0))
    (folder / "midi").mkdir(exist_ok=True)
    for file, (on, off) in NOTES.items():
        write_midi(folder / "midi" / file, on, off)
    job = folder / name
    job.write_text(JOB.format(seconds=seconds))
    return job


def rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def stable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in VOLATILE}


def neuralgraph(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuralgraph", *args], capture_output=True, text=True, **kwargs)


def same_files(a: Path, b: Path) -> list[str]:
    """Names of the data files that differ between two output folders (or exist in one only)."""
    names = {p.name for p in a.iterdir() if p.suffix in (".flac", ".wav", ".npy")}
    names |= {p.name for p in b.iterdir() if p.suffix in (".flac", ".wav", ".npy")}
    return sorted(
        n for n in names if not ((a / n).exists() and (b / n).exists() and (a / n).read_bytes() == (b / n).read_bytes())
    )


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The 3 × 3 × 2-file job rendered in this process (--workers 1): (job file, output folder)."""
    root = tmp_path_factory.mktemp("batch")
    job = make_job(root)
    out = root / "out1"
    summary = run_batch(load_job(job), out, workers=1, progress=False)
    assert (summary.rendered, summary.skipped, summary.total) == (18, 0, 18)
    return job, out


@pytest.fixture(scope="module")
def long_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same job with 12 s renders (long enough to be killed midway), rendered uninterrupted."""
    root = tmp_path_factory.mktemp("batch_long")
    job = make_job(root, seconds=12.0)
    run_batch(load_job(job), root / "uninterrupted", workers=1, progress=False)
    return job, root / "uninterrupted"


def test_a_grid_times_midi_files_gives_one_measured_file_per_render(local: tuple[Path, Path]) -> None:
    job, out = local
    table = rows(out)
    assert len(table) == 18 and sorted(r["index"] for r in table) == list(range(18))
    assert len(list(out.glob("*.flac"))) == 18 and len(list(out.glob("*.env.out.npy"))) == 18
    combos = {(r["osc.freq"], r["amp.gain_db"], r["midi"]) for r in table}
    assert len(combos) == 18  # every grid point with every file, once
    for row in table:
        audio, rate = soundfile.read(out / row["path"], dtype="float64")
        assert rate == RATE == row["sample_rate"] and audio.shape == (RATE,) and row["frames"] == RATE
        on, off = NOTES[Path(row["midi"]).name]
        held = audio[int((on + 0.05) * RATE) : int((off - 0.05) * RATE)]
        # the file's content is what its row says: pitch from osc.freq, level from amp.gain_db
        assert peak_frequency(held, RATE) == pytest.approx(row["osc.freq"], abs=0.5)
        assert rms(held) * np.sqrt(2) == pytest.approx(10 ** (row["amp.gain_db"] / 20), rel=0.01)
        assert row["peak"] == pytest.approx(np.max(np.abs(audio)), abs=1e-6)
        assert row["rms"] == pytest.approx(rms(audio), rel=1e-4)
        # the tap is the envelope, sample-aligned with the MIDI file's note-on
        env = np.load(out / row["taps"]["env.out"])
        assert env.shape == (1, RATE) and env.dtype == np.float32
        assert np.flatnonzero(env[0] > 0)[0] == round(on * RATE)
        assert np.all(env[0, int(off * RATE) + 200 :] == 0.0)
        assert (row["clipped"], row["non_finite"], row["faults"]) == (0, 0, [])
        assert row["seed"] == render_at(load_job(job), row["index"]).seed
        assert row["neuralgraph_version"] == ng.__version__ and len(row["patch_sha256"]) == 64


def test_a_record_alone_reproduces_its_file_with_a_fresh_engine(local: tuple[Path, Path]) -> None:
    """The worker re-uses one compiled engine; a fresh engine given one row's values makes the same bytes."""
    job, out = local
    for row in (rows(out)[-1], rows(out)[7]):
        patch = ng.load_patch(
            job.parent / "sine.toml", overrides={"osc.freq": row["osc.freq"], "amp.gain_db": row["amp.gain_db"]}
        )
        engine = ng.Engine(patch, sample_rate=row["sample_rate"])
        audio = engine.render(row["seconds"], midi=job.parent / row["midi"])
        assert encode_audio(audio, RATE, "flac", "24") == (out / row["path"]).read_bytes()


def test_two_worker_processes_write_the_same_bytes_and_rows(local: tuple[Path, Path], tmp_path: Path) -> None:
    job, out1 = local
    out2 = tmp_path / "out2"
    run = neuralgraph("batch", str(job), "-o", str(out2), "--workers", "2")
    assert run.returncode == 0, run.stderr
    assert "18 rendered, 0 already complete, 18 in all" in run.stdout and "on 2 workers" in run.stdout
    assert same_files(out1, out2) == []
    assert {r["worker"] for r in rows(out2)} != {r["worker"] for r in rows(out1)}
    assert sorted(map(stable, rows(out2)), key=lambda r: r["index"]) == sorted(
        map(stable, rows(out1)), key=lambda r: r["index"]
    )


def test_resume_redoes_exactly_the_missing_and_damaged_renders(local: tuple[Path, Path], tmp_path: Path) -> None:
    job, out1 = local
    out = tmp_path / "resumed"
    shutil.copytree(out1, out)
    (out / "000004.flac").unlink()  # missing
    (out / "000009.env.out.npy").write_bytes(b"\x93NUMPY truncated")  # damaged
    (out / ".000011.flac.123.part").write_bytes(b"half a file")  # a killed writer's temp file
    with open(out / "metadata.jsonl", "ab") as handle:
        handle.write(b'{"id": "000012", "index": 12, "pa')  # a torn last line
    summary = run_batch(load_job(job), out, workers=1, progress=False)
    assert (summary.rendered, summary.skipped) == (2, 16)
    assert same_files(out1, out) == []
    table = rows(out)
    assert sorted(r["index"] for r in table) == list(range(18))  # no duplicate row, none torn
    assert not list(out.glob(".*.part"))
    again = run_batch(load_job(job), out, workers=1, progress=False)
    assert (again.rendered, again.skipped) == (0, 18)


def test_a_changed_job_refuses_the_old_folder_unless_asked(local: tuple[Path, Path], tmp_path: Path) -> None:
    job, out1 = local
    out = tmp_path / "changed"
    shutil.copytree(out1, out)
    changed = job.parent / "changed.toml"
    changed.write_text(job.read_text().replace("seed = 7", "seed = 8").replace("[220, 330, 440]", "[220, 330]"))
    with pytest.raises(NeuralgraphError, match=r"holds the renders of another job \(changed: params, seed, total\)"):
        run_batch(load_job(changed), out, workers=1, progress=False)
    assert same_files(out1, out) == []  # untouched
    run = neuralgraph("batch", str(changed), "-o", str(out), "--workers", "1")
    assert run.returncode == 1 and "--overwrite" in run.stderr and "Traceback" not in run.stderr
    summary = run_batch(load_job(changed), out, workers=1, overwrite=True, progress=False)
    assert summary.rendered == 12 and len(rows(out)) == 12 and len(list(out.glob("*.flac"))) == 12


@pytest.mark.slow
def test_killing_the_pool_midway_then_resuming_leaves_every_render_once(
    long_local: tuple[Path, Path], tmp_path: Path
) -> None:
    job, uninterrupted = long_local
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuralgraph", "batch", str(job), "-o", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            metadata = out / "metadata.jsonl"
            if metadata.exists() and metadata.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the job finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its pool workers and the forkserver
    finally:
        proc.wait()
    before = rows(out)
    assert 3 <= len(before) < 18
    for row in before:  # every row's files are complete; no final name holds a partial file
        for item in row["files"]:
            assert (out / item["path"]).stat().st_size == item["bytes"]
    for flac in out.glob("*.flac"):
        assert soundfile.info(flac).frames == 12 * RATE
    summary = run_batch(load_job(job), out, workers=1, progress=False)  # this process: kernels already compiled
    assert summary.skipped == len(before) and summary.rendered == 18 - len(before)
    table = rows(out)
    assert sorted(r["index"] for r in table) == list(range(18))
    assert same_files(out, uninterrupted) == []


def test_random_draws_and_notes_times_velocities(tmp_path: Path) -> None:
    """NSynth-style notes × velocities with a parameter drawn per render from the job seed."""
    (tmp_path / "sine.toml").write_text(PATCH.format(freq='"keys.freq"'))
    job_file = tmp_path / "notes.toml"
    job_file.write_text(
        'patch = "sine.toml"\nseconds = 0.5\nseed = 3\nsamples = 2\n'
        '[params]\n"amp.gain_db" = { uniform = [-30.0, -6.0] }\n'
        '"env.release_ms" = { log_uniform = [1.0, 20.0] }\n'
        "[midi]\nnotes = { range = [60, 62] }\nvelocities = [40, 127]\nhold = 0.3\n"
        '[outputs]\naudio = "wav"\n'
    )
    job = load_job(job_file)
    assert job.total == 2 * 3 * 2
    run_batch(job, tmp_path / "out", workers=1, progress=False)
    table = sorted(rows(tmp_path / "out"), key=lambda r: r["index"])
    assert [(r["note"], r["velocity"]) for r in table[:6]] == [
        (60, 40),
        (60, 127),
        (61, 40),
        (61, 127),
        (62, 40),
        (62, 127),
    ]
    gains = [r["amp.gain_db"] for r in table]
    assert len(set(gains)) == 12 and all(-30 <= g <= -6 for g in gains)
    assert all(1.0 <= r["env.release_ms"] <= 20.0 for r in table)
    for row in table:
        assert render_at(job, row["index"]).params == {k: row[k] for k in ("amp.gain_db", "env.release_ms")}
        audio, rate = soundfile.read(tmp_path / "out" / row["path"], dtype="float64")
        held = audio[int(0.05 * rate) : int(0.28 * rate)]
        assert peak_frequency(held, rate) == pytest.approx(440 * 2 ** ((row["note"] - 69) / 12), abs=0.5)
        assert rms(held) * np.sqrt(2) == pytest.approx(10 ** (row["amp.gain_db"] / 20), rel=0.01)
        assert np.max(np.abs(audio[int(0.3 * rate) + 400 :])) == 0.0  # released at hold = 0.3 s
    # another seed draws other values; the same seed the same ones, whatever the order of asking
    other = load_job(job_file)
    backwards = {i: render_at(other, i).params for i in reversed(range(12))}
    assert [backwards[i] for i in range(12)] == [{k: r[k] for k in ("amp.gain_db", "env.release_ms")} for r in table]
    job_file.write_text(job_file.read_text().replace("seed = 3", "seed = 4"))
    assert render_at(load_job(job_file), 0).params != render_at(job, 0).params


BAD_JOBS = [
    (
        'patch = "sine.toml"\nseconds = 1.0\nsamles = 2\n',
        "job.toml:3:1: NG200 samles: unknown key `samles` (did you mean `samples`?)",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"osc.frq" = [1, 2]\n',
        "job.toml:4:1: NG203 params.osc.frq: `osc.sine` has no parameter or input `frq` (did you mean `freq`?)",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"lfo.freq" = [1, 2]\n',
        "job.toml:4:1: NG203 params.lfo.freq: the patch has no node `lfo`",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"vca.gain" = [1, 2]\n',
        "job.toml:4:1: NG203 params.vca.gain: `vca.gain` is connected in the patch; only unconnected inputs can be set",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"osc.freq" = [220, 200000]\n"amp.gain_db" = [-6, 0]\n',
        "job.toml:4:20: NG204 params.osc.freq[1]: 200000 must be <= 100000 Hz; 2 of 4 renders use it, the first "
        "#2: osc.freq = 200000, amp.gain_db = -6",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"amp.gain_db" = { log_uniform = [0, 6] }\n',
        "job.toml:4:19: NG201 params.amp.gain_db.log_uniform: log_uniform needs lo > 0, got 0",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"amp.gain_db" = { uniform = [-6, 60] }\n',
        "job.toml:4:34: NG204 params.amp.gain_db.uniform[1]: 60 must be <= 48 dB; uniform draws may reach it",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[midi]\nfiles = "nowhere/*.mid"\n',
        "job.toml:4:9: NG202 midi.files: 'nowhere/*.mid' matches no file (relative to the job file)",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[outputs]\naudio = "mp3"\n',
        "job.toml:4:9: NG201 outputs.audio: 'mp3' is not one of 'wav', 'flac'",
    ),
    (
        'patch = "sine.toml"\nseconds = 1.0\n[outputs]\ntaps = ["env.gate", "enx.out"]\n',
        "job.toml:4:9: NG205 outputs.taps[0]: `env.adsr` has no audio or control output `gate`",
    ),
    ('patch = "sine.toml"\nseconds = -1\n', "job.toml:2:11: NG201 seconds: -1 is not a number > 0 and <= 3600"),
    (
        'patch = "synth.toml"\nseconds = 1\n',
        "job.toml:1:9: NG202 patch: no such patch file 'synth.toml' (relative to the job file)",
    ),
    ("seconds = 1\n", "job.toml:1:1: NG206 the job names no patch"),
    ('patch = "sine.toml"\nseconds = [1\n', "job.toml:3:1: NG100 invalid TOML: Unclosed array"),
]


@pytest.mark.parametrize(
    "text, expected",
    BAD_JOBS,
    ids=[f"{i}-{e.split()[1] if ' NG' in e else 'NG100'}" for i, (_, e) in enumerate(BAD_JOBS)],
)
def test_job_file_mistakes_are_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    (tmp_path / "sine.toml").write_text(PATCH.format(freq=440.0))
    (tmp_path / "job.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ng.PatchError) as info:
        load_job("job.toml")
    assert any(p.format().startswith(expected) for p in info.value.problems), info.value


def test_the_command_prints_every_job_problem_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "sine.toml").write_text(PATCH.format(freq=440.0))
    (tmp_path / "job.toml").write_text(
        'patch = "sine.toml"\nseconds = 1.0\n[params]\n"amp.gain_db" = [-6, 100]\n[outputs]\ntaps = ["enx.out"]\n'
    )
    run = neuralgraph("batch", "job.toml", "-o", "out", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert (
        "job.toml:4:22: NG204 params.amp.gain_db[1]: 100 must be <= 48 dB; 1 of 2 renders use it, "
        "the first #1: amp.gain_db = 100"
    ) in run.stderr
    assert "job.toml:6:9: NG205 outputs.taps[0]: the patch has no node `enx` (did you mean `env`?)" in run.stderr
    assert "2 problems found" in run.stderr and not (tmp_path / "out").exists()
    with pytest.raises(JobError):
        load_job(tmp_path / "job.toml")


def test_each_render_shows_its_notices_as_render_does(tmp_path: Path) -> None:
    """The shipped violin (trained G3-G6) over two real MIDI files: G2 (43), played twice, is
    folded to G3 and named once for its render, in the terminal and in the metadata; D4 is not."""
    (tmp_path / "midi").mkdir()
    low = mido.MidiFile(type=0, ticks_per_beat=480)  # 120 BPM: 960 ticks per second
    track = mido.MidiTrack()
    low.tracks.append(track)
    for on in (0, 1):
        track.append(mido.Message("note_on", note=43, velocity=100, time=0 if on == 0 else 240))
        track.append(mido.Message("note_off", note=43, velocity=0, time=720))
    low.save(tmp_path / "midi" / "low.mid")
    write_midi(tmp_path / "midi" / "inside.mid", 0.0, 0.75, note=62)
    (tmp_path / "job.toml").write_text(
        f'patch = "{(ROOT / "graphs" / "neural_violin.toml").as_posix()}"\ntail = 0.25\n[midi]\nfiles = "midi/*.mid"\n'
    )
    run = neuralgraph("batch", "job.toml", "-o", "out", "--workers", "1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if "warning" in line]
    by_midi = {row["midi"]: row for row in rows(tmp_path / "out")}
    assert warned == [
        f"neuralgraph: warning: render {by_midi['midi/low.mid']['id']} (midi/low.mid): pitch: note 43 (G2) is "
        "outside the trained range 55..91 (G3–G6); policy 'fold': played as note 55 (G3)"
    ]
    assert by_midi["midi/low.mid"]["notices"] == [warned[0].split("(midi/low.mid): ")[1]]
    assert by_midi["midi/inside.mid"]["notices"] == []
    # what the notice says is what was played: G3's fundamental, nothing at the written G2
    audio, rate = soundfile.read(tmp_path / "out" / by_midi["midi/low.mid"]["path"], always_2d=True)
    x = audio[round(0.2 * rate) : round(0.7 * rate), 0]
    played = peak_frequency(x, rate, lo=80.0, hi=260.0)
    assert abs(1200 * np.log2(played / 196.0)) < 30, played  # the violin's own vibrato: ±18 cents


# ---- Ray ---------------------------------------------------------------------------------------

# Run inside tools/ray_loopback.sh (RAY_ADDRESS names its head): the job, then the long job with one
# actor's process SIGKILLed once renders are arriving (inside the PID namespace, only ours exist).
RAY_SCRIPT = r"""
status=0
"$PY" -m neuralgraph batch "$JOB" -o "$OUT_RAY" --ray 127.0.0.1:26379 || status=$?
"$PY" -m neuralgraph batch "$JOB_LONG" -o "$OUT_FAULT" --ray auto &
driver=$!
killed=""
for _ in $(seq 1 3000); do
    if [ -f "$OUT_FAULT/metadata.jsonl" ] && [ "$(wc -l < "$OUT_FAULT/metadata.jsonl")" -ge 2 ]; then
        for p in /proc/[0-9]*; do
            if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q '^ray::RenderActor'; then
                killed=${p#/proc/}; kill -9 "$killed"; break
            fi
        done
        break
    fi
    sleep 0.05
done
wait $driver || status=$?
echo "killed actor pid: ${killed:-none}"
exit $status
"""


def _ray_available() -> str | None:
    """Why the Ray test cannot run here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install -e '.[test]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.decode().strip()} (CI runs as root)"
    return None


@pytest.mark.slow
def test_a_real_ray_cluster_writes_the_local_bytes_and_survives_a_lost_worker(
    local: tuple[Path, Path], long_local: tuple[Path, Path], tmp_path: Path
) -> None:
    """A head and its workers started by the test, in a network namespace with only loopback (and a
    PID namespace, so ending it ends every Ray process it started); the driver connects by address."""
    why = _ray_available()
    if why:
        if os.environ.get("CI") or os.environ.get("NEURALGRAPH_REQUIRE_AUDIO"):
            pytest.fail(why)
        pytest.skip(why)
    job, out1 = local
    long_job, uninterrupted = long_local
    env = dict(
        os.environ,
        PY=sys.executable,
        JOB=str(job),
        JOB_LONG=str(long_job),
        OUT_RAY=str(tmp_path / "ray"),
        OUT_FAULT=str(tmp_path / "fault"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    run = subprocess.run(
        ["bash", str(ROOT / "tools" / "ray_loopback.sh"), "--cpus", "2", "--", "bash", "-c", RAY_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "18 rendered, 0 already complete, 18 in all" in run.stdout and "on 2 workers" in run.stdout
    assert same_files(out1, tmp_path / "ray") == []
    assert sorted(map(stable, rows(tmp_path / "ray")), key=lambda r: r["index"]) == sorted(
        map(stable, rows(out1)), key=lambda r: r["index"]
    )
    assert "killed actor pid: none" not in run.stdout, run.stdout
    fault = rows(tmp_path / "fault")
    assert sorted(r["index"] for r in fault) == list(range(18))  # every render, exactly once
    assert len({r["worker"] for r in fault}) >= 2
    assert same_files(tmp_path / "fault", uninterrupted) == []


def test_the_documented_flute_example_is_a_valid_job() -> None:
    run = neuralgraph("batch", str(ROOT / "examples" / "batch" / "flute_ddsp.toml"), "-o", "unused", "--check")
    assert run.returncode == 0, run.stderr
    midi = len(list((ROOT / "examples" / "midi").glob("*.mid")))  # the job takes every file there
    assert midi >= 2
    assert f"{6 * midi} renders (grid 3, 2 draws per point, {midi} per draw from MIDI), 48000 Hz, flac" in run.stdout


def test_ray_without_ray_installed_says_how_to_install_it(local: tuple[Path, Path], tmp_path: Path) -> None:
    job, _ = local
    code = (
        "import sys; sys.modules['ray'] = None  # as if Ray were not installed\n"
        "from neuralgraph._tools.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "batch", str(job), "-o", str(tmp_path / "o"), "--ray", "auto"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "--ray needs Ray: pip install 'neuralgraph[ray]'" in run.stderr


def test_two_batches_cannot_write_one_folder_at_once(local: tuple[Path, Path], tmp_path: Path) -> None:
    from neuralgraph._tools.batch.store import Store

    job, out1 = local
    out = tmp_path / "busy"
    shutil.copytree(out1, out)
    with Store(out, load_job(job)):
        with pytest.raises(NeuralgraphError, match="another batch is writing to this folder"):
            run_batch(load_job(job), out, workers=1, progress=False)
    assert run_batch(load_job(job), out, workers=1, progress=False).skipped == 18
