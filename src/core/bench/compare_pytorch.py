"""exprflow against the same models in PyTorch, side by side in one run: training cells/s of every composition
(bench_compositions) and of its PyTorch twin (pytorch_compositions.py), with OpenBLAS as the machine picks it and
with the kernels the CPU supports (OPENBLAS_CORETYPE), same LibTorch, same thread settings. Achieved GFLOP/s is
cells/s x the twin's profiled matrix-product work per cell, against the measured fp32 matrix-product peak.

  /usr/bin/python3 src/core/bench/compare_pytorch.py --bench build/core-tests/bench_compositions
      [--architecture NAME ...] [--genes N] [--steps N] [--threads N] [--repeats N] [--coretype NAME|none]
      [--precision float32|bfloat16]

Each (composition, BLAS setting) pair runs `--repeats` times, alternating exprflow and PyTorch, in fresh
processes; the table shows medians and the ratio exprflow / PyTorch (> 1: exprflow faster). PyTorch runs twice:
as shipped, and with the malloc policy exprflow sets at load (pytorch_compositions.py --reuse-memory), so that
the ratio separates the allocator from the rest. --precision bfloat16 trains exprflow with bfloat16 matrix products
(bench_compositions --precision); the twins stay float32: PyTorch 1.13's CPU autocast stops at their layer norms
("expected scalar type BFloat16 but found Float").
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = re.compile(r"^(\S+)\s+\S*\s*(\d+) genes\s+([\d.]+)M params \| train\s+([\d.]+) cells/s\s*(?:vae\s+([\d.]+) cells/s)?")
PEAK = re.compile(r"fp32 mm peak: ([\d.]+) GFLOP/s")
FLOPS = re.compile(r"MFLOP/cell ([\d.]+)")
KERNELS = re.compile(r"BLAS \S+ \((\S+) kernels\)")


def cpu_coretype() -> str:
    """The OpenBLAS kernels this CPU supports, as the Makefile names them."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return ""
    if re.search(r"\bavx512bw\b", flags):
        return "SkylakeX"
    return "Haswell" if re.search(r"\bavx2\b", flags) else ""


def run(command, coretype):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{out.stderr}")
    return out.stdout


def parse(text):
    """(params in M, training cells/s, VAE cells/s or None, MFLOP/cell or None, peak GFLOP/s or None)."""
    row, peak, flops = None, None, None
    for line in text.splitlines():
        m = TRAIN.match(line)
        if m:
            row = m
        p = PEAK.search(line)
        if p:
            peak = float(p.group(1))
        f = FLOPS.search(line)
        if f:
            flops = float(f.group(1))
    if row is None:
        sys.exit(f"no result line in:\n{text}")
    vae = float(row.group(5)) if row.group(5) else None
    return float(row.group(3)), float(row.group(4)), vae, flops, peak


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True, help="path of the bench_compositions executable")
    p.add_argument("--architecture", nargs="*", default=[])
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--coretype", default=None, help="OpenBLAS kernels to compare with (default: the CPU's; none: skip)")
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                   help="exprflow's matrix products (the twins run float32)")
    a = p.parse_args()
    sys.path.insert(0, HERE)
    from pytorch_compositions import TWINS

    names = a.architecture or list(TWINS)
    unknown = [n for n in names if n not in TWINS]
    if unknown:
        p.error(f"no PyTorch twin for {', '.join(unknown)}")
    fixed = cpu_coretype() if a.coretype is None else ("" if a.coretype == "none" else a.coretype)
    # The kernels OpenBLAS picks by itself: where they are the fix already, one setting is enough.
    probe = run([a.bench, "--architecture", "state_mlp", "--genes", "50", "--steps", "1", "--sample-cells", "0"], None)
    kernels = KERNELS.search(probe)
    machine = kernels.group(1) if kernels else "?"
    settings = [(machine, None)] + ([(fixed, fixed)] if fixed and fixed != machine else [])
    if fixed and fixed == machine:
        print(f"OpenBLAS runs its {machine} kernels by itself here: no OPENBLAS_CORETYPE run needed")
    common = ["--genes", str(a.genes), "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)]
    print(f"{a.genes} genes, batch {a.batch}, {a.threads} thread(s), median of {a.repeats} runs. Training cells/s of "
          f"exprflow (large malloc blocks reused, its default; {a.precision} products), PyTorch as shipped (glibc's malloc defaults) and "
          f"PyTorch with exprflow's malloc policy; x: exprflow / that PyTorch run. GFLOP/s: exprflow's, from the "
          f"twin's profiled work per cell; % of the fp32 matrix-product peak measured by bench_compositions.")
    print(f"{'composition':<15} {'BLAS':<9} {'params M':>13} {'exprflow':>9} {'PyTorch':>16} {'PyTorch+reuse':>16}"
          f" {'GFLOP/s':>8} {'% peak':>7}  VAE stage: exprflow / PyTorch+reuse")
    for name in names:
        for label, coretype in settings:
            ours, theirs, theirs_reused = [], [], []
            twin = [sys.executable, os.path.join(HERE, "pytorch_compositions.py"), "--architecture", name] + common
            for r in range(a.repeats):
                ours.append(parse(run([a.bench, "--architecture", name, "--sample-cells", "0", "--precision", a.precision]
                                      + common, coretype)))
                theirs.append(parse(run(twin, coretype)))
                theirs_reused.append(parse(run(twin + ["--reuse-memory"] + (["--flops"] if r == 0 else []), coretype)))
            e, t, tr = median(ours, 1), median(theirs, 1), median(theirs_reused, 1)
            flops, peak = theirs_reused[0][3], median(ours, 4)
            gflops = f"{e * flops / 1e3:8.1f}" if flops else f"{'':8}"
            share = f"{100 * e * flops / 1e3 / peak:6.0f}%" if flops and peak else f"{'':7}"
            ev, tv = median(ours, 2), median(theirs_reused, 2)
            vae = f"  {ev:8.1f} / {tv:8.1f} ({ev / tv:4.2f}x)" if ev and tv else ""
            print(f"{name:<15} {label:<9} {ours[0][0]:6.2f}/{theirs[0][0]:6.2f} {e:9.1f} {t:9.1f} ({e / t:4.2f}x)"
                  f" {tr:9.1f} ({e / tr:4.2f}x) {gflops} {share}{vae}", flush=True)


def median(rows, i):
    values = [row[i] for row in rows if row[i] is not None]
    return statistics.median(values) if values else None


if __name__ == "__main__":
    main()
