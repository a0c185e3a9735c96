"""Training throughput of the PyTorch twins of exprflow's compositions, for side-by-side runs with
bench_compositions (compare_pytorch.sh runs both and prints the ratios).

Run with Debian's own python3 (python3-torch: the same LibTorch 1.13 and OpenBLAS as exprflow):
  /usr/bin/python3 src/core/bench/pytorch_compositions.py [--architecture NAME] [--genes N]
      [--batch N] [--steps N] [--threads N] [--flops] [--reuse-memory] [--device cpu|cuda]
Prints one line per composition and gene count, in bench_compositions' words:
  NAME  GENES genes  PARAMSM params | train CELLS cells/s [vae CELLS cells/s] [| MFLOP/cell F]
--reuse-memory makes glibc's malloc keep large blocks for reuse, as exprflow does at load
(runtime/allocation_policy.cpp): without it every large activation is a fresh mmap, page-faulted and zeroed.
--flops adds the trained (last) stage's matrix-product work per cell and step, forward and backward, as PyTorch's
profiler counts it: the same for exprflow's model, so cells/s x MFLOP/cell is either one's achieved GFLOP/s.
Latent models report their two stages apart: the count VAE and the flow over its latent codes.
--device cuda (PyTorch >= 2.0, a GPU) builds and trains the twins on the GPU (torch.set_default_device), to set
beside bench_compositions --device cuda; the synthetic data are drawn on the CPU first, the same cells as there.
"""
import argparse
import ctypes
import importlib
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch"))
from common import parameter_count, step_flops, synthetic_counts, synthetic_resources, time_stage  # noqa: E402

# composition -> the twin's module (src/core/bench/pytorch/<module>.py)
TWINS = {
    "latent_tokens": "latent_tokens",
    "state_mlp": "state_mlp",
    "pathway_tokens": "pathway_tokens",
    "grn_attention": "grn_attention",
    "rank_tokens": "rank_tokens",
    "set_tokens": "set_tokens",
    "vae": "latent_models",
    "latent_mlp": "latent_models",
    "latent_dit": "latent_models",
    "latent_grn": "latent_models",
    "latent_pathway": "latent_models",
    "cells_as_tokens": "latent_models",
    "latent_ssm": "latent_models",
}


def run(name: str, genes: int, batch: int, steps: int, flops: bool, device: str) -> None:
    torch.manual_seed(0)
    twin = importlib.import_module(TWINS[name])
    resources = {key: value.to(device) for key, value in synthetic_resources(genes).items()}
    stages = twin.stages(name, genes, resources)
    for stage in stages:
        stage.module.to(device)
    counts = synthetic_counts(genes, batch * (steps + 2), 7).to(device)
    rates = {}
    for stage in stages:
        b = stage.batch_size or batch
        rates[stage.name] = b / time_stage(stage, counts, b, steps)
    params = sum(parameter_count(s.module) for s in stages)
    model_rate = rates.get("latent", rates.get("model", rates.get("vae")))
    vae = f"vae {rates['vae']:8.1f} cells/s" if "vae" in rates and len(stages) > 1 else ""
    work = ""
    if flops:
        last = stages[-1]
        b = last.batch_size or batch
        work = f" | MFLOP/cell {step_flops(last, counts, b) / b / 1e6:.1f}"
    print(f"{name:<14} {genes:6d} genes {params / 1e6:7.2f}M params | train {model_rate:8.1f} cells/s {vae}{work}",
          flush=True)


def reuse_large_allocations() -> None:
    """glibc: no mmap for large blocks and a 1 GiB trim threshold (mallopt M_MMAP_MAX = -4, M_TRIM_THRESHOLD = -1)."""
    libc = ctypes.CDLL("libc.so.6")
    if not (libc.mallopt(-4, 0) and libc.mallopt(-1, 1 << 30)):
        sys.exit("mallopt failed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--architecture", default="")
    p.add_argument("--genes", type=int, default=0, help="one gene count (default: 2,000 and 20,000)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=6, help="timed steps per stage, after 2 warm-up steps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--flops", action="store_true", help="also count the matrix-product work per cell")
    p.add_argument("--reuse-memory", action="store_true", help="keep large malloc blocks for reuse, as exprflow")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = p.parse_args()
    if a.architecture and a.architecture not in TWINS:
        p.error(f"unknown --architecture '{a.architecture}'; twins: {', '.join(TWINS)}")
    if a.batch < 1 or a.steps < 1 or a.threads < 1 or a.genes < 0:
        p.error("--batch, --steps, --threads and --genes must be positive")
    torch.set_num_threads(a.threads)
    if a.device == "cuda":
        torch.set_default_device("cuda")  # the tensors the twins make as they run (noise, times) too
    if a.reuse_memory:
        reuse_large_allocations()
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} torch thread(s), device {a.device}, batch {a.batch}, malloc "
          f"{'reusing large blocks' if a.reuse_memory else 'glibc defaults'}", flush=True)
    for genes in ([a.genes] if a.genes else [2000, 20000]):
        for name in ([a.architecture] if a.architecture else TWINS):
            run(name, genes, a.batch, a.steps, a.flops, a.device)


if __name__ == "__main__":
    main()
