"""neuralgraph beside Pure Data, scsynth, Csound, pyo and SignalFlow: both forms of P1-P3, one run.

    PEERS=../shared/peers   # the peer harness (its README: what it installs, what it measures)
    $PEERS/run_peers.sh --reps 1 --dur 2 --patches P1 --engines pd   # once: installs the peers
    ~/.cache/neuralgraph-peers/.venv/bin/python benchmarks/peers.py --peers $PEERS \\
        --reps 3 --dur 20 --before /path/to/old/checkout/.venv/bin/neuralgraph

It adds neuralgraph engines to the harness's own list and runs it, so every engine renders
every patch interleaved in one run: ``ng-lanes-N`` renders ``graphs/bench/p*.toml`` (voices as
lanes of one node), ``ng-voice-N`` renders ``graphs/bench/per_voice/p*.toml`` (one node per voice,
mixed by fan-in lists), at block N (64 and 256), with the ``neuralgraph`` on PATH; ``--before``
names another ``neuralgraph`` executable (an older checkout) that renders the per-voice form as
``before-voice-64`` and the lanes form as ``before-lanes-64``. After the harness's tables it prints each neuralgraph engine's net real-time
factor as a ratio to scsynth's, Pure Data's and the ``before`` engine's from the same run: the
machine is shared, so only same-run ratios are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANES = ROOT / "graphs" / "bench"
PER_VOICE = LANES / "per_voice"


def patch_in(folder: Path, patch: str) -> str:
    """The harness's rule: ``P1.toml``, else the first ``p1_*.toml``."""
    return str(min(folder.glob(f"{patch.lower()}_*.toml")))


def render(exe: str, folder: Path, block: int):
    def cmd(patch: str, dur: float, out: str) -> list[str]:
        return [exe, "render", patch_in(folder, patch), "-o", out, "--seconds", f"{dur:g}", "--block-size", str(block)]

    return cmd


def ratios(rows: list[dict], baselines: list[str]) -> str:
    """Each neuralgraph engine's net RTF divided by each baseline's, per patch."""
    net = {(r["engine"], r["patch"]): r.get("net_rtf") for r in rows if r.get("n")}
    ours = sorted({e for e, _ in net if e.startswith(("ng-", "before-"))})
    patches = sorted({p for _, p in net})
    head = "| engine | patch | net RTF | " + " | ".join(f"÷ {b}" for b in baselines) + " |"
    lines = [head, "|" + "---|" * (3 + len(baselines))]
    for e in ours:
        for p in patches:
            if (e, p) not in net:
                continue
            cells = [f"{net[(e, p)] / net[(b, p)]:.2f}" if net.get((b, p)) else "-" for b in baselines]
            lines.append(f"| {e} | {p} | {net[(e, p)]:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", default=str(ROOT.parent / "shared" / "peers"), help="the peer harness folder")
    ap.add_argument("--before", help="another neuralgraph executable: before-voice-64 and before-lanes-64")
    ap.add_argument(
        "--engines", default="pd,scsynth,csound,pyo,signalflow,ng-lanes-64,ng-voice-64,ng-lanes-256,ng-voice-256"
    )
    ap.add_argument("--reps", default="3")
    ap.add_argument("--dur", default="20")
    ap.add_argument("--patches", default="P1,P2,P3")
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import run_peers  # the harness: its engines, runner and tables

    exe = os.environ.get("NG", "neuralgraph")
    for block in (64, 256):
        run_peers.ENGINES[f"ng-lanes-{block}"] = (render(exe, LANES, block), run_peers.ALL)
        run_peers.ENGINES[f"ng-voice-{block}"] = (render(exe, PER_VOICE, block), run_peers.ALL)
    engines = a.engines
    if a.before:
        run_peers.ENGINES["before-voice-64"] = (render(a.before, PER_VOICE, 64), run_peers.ALL)
        run_peers.ENGINES["before-lanes-64"] = (render(a.before, LANES, 64), run_peers.ALL)
        engines += ",before-voice-64,before-lanes-64"
    tag = a.tag or run_peers.time.strftime("%Y%m%d-%H%M%S")
    sys.argv = [
        "run_peers.py",
        "--reps",
        a.reps,
        "--dur",
        a.dur,
        "--patches",
        a.patches,
        "--engines",
        engines,
        "--tag",
        tag,
    ]
    run_peers.main()
    rows = json.load(open(os.path.join(run_peers.RES, f"summary-{tag}.json")))["rows"]
    baselines = ["scsynth", "pd"] + (["before-voice-64"] if a.before else [])
    print("\nnet real-time factor as a ratio to other engines of the same run:\n")
    print(ratios(rows, [b for b in baselines if b in engines]))


if __name__ == "__main__":
    main()
