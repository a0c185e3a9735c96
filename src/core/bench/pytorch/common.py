"""What the PyTorch twins of exprflow's compositions share.

Each twin is the same network as an exprflow composition with its default
settings, written as a PyTorch user would write it, so that one training step
can be timed side by side with `bench_compositions` (same LibTorch, same BLAS,
same thread settings). Here: synthetic counts and resources shaped as in
bench_common.hpp, the parts most compositions use (timestep embedding, adaLN
DiT block, flow-matching loss), and the timed training loop with the same
per-step work as exprflow's trainer (normalise the batch, forward, loss,
backward, gradient clipping, AdamW, EMA of the weights).

A twin file defines `stages(genes, resources) -> [Stage, ...]`: one stage for
a one-stage model, "vae" then "latent" for a latent model.
"""
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALISATION_TARGET = 1e4  # counts per cell before log1p, as exprflow normalises
TIME_SCALE = 1000.0         # flow time in [0, 1] is scaled before the sinusoid (condition/timestep_embedding.hpp)


# ---------------------------------------------------------------- data

def synthetic_counts(genes: int, cells: int, seed: int) -> torch.Tensor:
    """~10% non-zero counts with a geometric-like tail (bench_common.hpp's synthetic_counts)."""
    g = torch.Generator().manual_seed(seed)  # on the CPU, whatever the default device: the same cells everywhere
    nonzero = torch.rand(cells, genes, generator=g, device="cpu") < 0.1
    values = 1 + torch.floor(-3 * torch.log(torch.rand(cells, genes, generator=g, device="cpu") + 1e-12))
    return torch.where(nonzero, values, torch.zeros((), device="cpu"))  # (N, G)


def log_normalise(counts: torch.Tensor) -> torch.Tensor:
    total = counts.sum(1, keepdim=True).clamp_min(1.0)
    return torch.log1p(counts / total * NORMALISATION_TARGET)  # (B, G)


class GeneStandardiser:
    """Per-gene mean / sd (floor 0.05) of the log-normalised training cells, fitted once before training
    (untimed, as exprflow's GeneScaling::fit); each step standardises its batch, as exprflow's trainer does
    for models in gene space."""
    MIN_SD = 0.05  # GeneScaling::kMinSd

    def __init__(self, genes: int):
        self.mean, self.sd = torch.zeros(genes), torch.ones(genes)

    def fit(self, counts: torch.Tensor) -> None:
        x = log_normalise(counts).double()  # (N, G)
        self.mean = x.mean(0).float()
        self.sd = x.var(0, unbiased=False).sqrt().float().clamp_min(self.MIN_SD)

    def __call__(self, counts: torch.Tensor) -> torch.Tensor:
        return (log_normalise(counts) - self.mean) / self.sd  # (B, G)


def synthetic_gene_sets(genes: int, seed: int) -> torch.Tensor:
    """Hallmark-like membership (44 sets of ~34 genes over 40% of the genes), (S, G) of 0/1."""
    g = torch.Generator().manual_seed(seed)
    sets, covered = 44, max(1, genes * 2 // 5)
    per_set = max(1, covered * 15 // 8 // sets)
    member = torch.zeros(sets, genes, device="cpu")
    for s in range(sets):
        member[s, torch.randint(0, covered, (per_set,), generator=g, device="cpu")] = 1.0
    return member


def synthetic_grn(genes: int, edges: int, seed: int) -> torch.Tensor:
    """(E, 2) long (regulator, target); regulators from the first 10% of the genes."""
    g = torch.Generator().manual_seed(seed)
    regulator = torch.randint(0, max(1, genes // 10), (edges,), generator=g, device="cpu")
    target = torch.randint(0, genes, (edges,), generator=g, device="cpu")
    return torch.stack([regulator, target], 1)


def synthetic_resources(genes: int, seed: int = 11, edges_per_gene: int = 5) -> dict:
    return {"gene_sets": synthetic_gene_sets(genes, seed), "grn": synthetic_grn(genes, genes * edges_per_gene, seed)}


# ---------------------------------------------------------------- layers

def sinusoidal_features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.linear_in = nn.Linear(frequency_dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        nn.init.normal_(self.linear_in.weight, 0.0, 0.02)
        nn.init.normal_(self.linear_out.weight, 0.0, 0.02)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        h = sinusoidal_features(t * TIME_SCALE, self.frequency_dim)
        return self.linear_out(F.silu(self.linear_in(h)))  # (B, D)


def attention(q, k, v, bias=None):
    """(B, H, T, Dh) -> (B, H, T, Dh); PyTorch's fused kernel where it has one (2.x)."""
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is not None:
        return sdpa(q, k, v, attn_mask=bias)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    return scores.softmax(-1) @ v


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, bias=None):
        """bias: an additive score bias broadcast to (B, H, T, T), or None."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
        return self.proj(attention(q, k, v, bias).transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class GeneValueTokens(nn.Module):
    """One token per gene: a unit-scale gene identity plus the gene's value times a value direction, plus a bias
    (tokenize/gene_value_tokens.cpp). (B, G) -> (B, G, D)."""

    def __init__(self, genes: int, dim: int):
        super().__init__()
        self.gene = nn.Parameter(torch.randn(genes, dim))  # (G, D)
        self.value = nn.Parameter(torch.randn(dim))        # (D,)
        self.value_bias = nn.Parameter(torch.zeros(dim))   # (D,)

    def forward(self, x):
        return torch.addcmul(self.gene + self.value_bias, x.unsqueeze(-1), self.value)  # (B, G, D)


def zero_linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def per_token(m):
    """(B, D) modulation broadcast over the tokens; (B, T, D) is already per token."""
    return m.unsqueeze(1) if m.dim() == 2 else m


def modulate(x, shift, scale):
    return x * (1 + per_token(scale)) + per_token(shift)  # (B, T, D)


class DiTBlock(nn.Module):
    """adaLN-Zero block (backbone/dit_block.cpp): attention + tanh-GELU MLP, both gated by the condition."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, attention_module: Optional[nn.Module] = None):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attention = attention_module if attention_module is not None else SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp_in = nn.Linear(dim, hidden)
        self.mlp_out = nn.Linear(hidden, dim)
        self.modulation = zero_linear(dim, 6 * dim)

    def forward(self, x, c, bias=None):
        s1, g1, a1, s2, g2, a2 = self.modulation(F.silu(c)).chunk(6, dim=-1)
        h = modulate(self.norm1(x), s1, g1)
        # Only score-biased attention takes a bias (a graph's edge attention takes none).
        x = x + per_token(a1) * (self.attention(h) if bias is None else self.attention(h, bias))
        h = self.mlp_out(F.gelu(self.mlp_in(modulate(self.norm2(x), s2, g2)), approximate="tanh"))
        return x + per_token(a2) * h  # (B, T, D)


class FinalModulation(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.modulation = zero_linear(dim, 2 * dim)

    def forward(self, x, c):
        shift, scale = self.modulation(F.silu(c)).chunk(2, dim=-1)
        return modulate(self.norm(x), shift, scale)  # (B, T, D)


class DiT(nn.Module):
    """n_layers DiT blocks and the final modulation (backbone/dit.cpp)."""

    def __init__(self, dim: int, n_layers: int, heads: int, mlp_ratio: float, make_attention=None):
        super().__init__()
        self.blocks = nn.ModuleList(
            [DiTBlock(dim, heads, mlp_ratio, make_attention() if make_attention else None) for _ in range(n_layers)])
        self.final = FinalModulation(dim)

    def forward(self, x, c):
        for block in self.blocks:
            x = block(x, c)
        return self.final(x, c)  # (B, T, D)


class ComposedNetwork(nn.Module):
    """tokenizer -> backbone (conditioned on the time) -> decoder, plus the gene-wise input skip
    (models/composed_network.cpp with `input_skip`, exprflow's default). No covariates: the
    benchmark trains unconditionally, so the condition embedding adds nothing."""

    def __init__(self, tokenizer: nn.Module, backbone: nn.Module, decoder: nn.Module, dim: int, genes: int,
                 input_skip: bool = True):
        super().__init__()
        self.tokenizer, self.backbone, self.decoder = tokenizer, backbone, decoder
        self.time = TimestepEmbedding(dim)
        self.skip = zero_linear(dim, genes) if input_skip else None

    def forward(self, x_t, t):
        c = self.time(t)                               # (B, D)
        h = self.backbone(self.tokenizer(x_t), c)      # (B, T, D)
        out = self.decoder(h, x_t)                     # (B, G), or (value, scale) with a variance head
        value, scale = out if isinstance(out, tuple) else (out, None)
        if self.skip is not None:
            value = value + self.skip(F.silu(c)) * x_t
        return value if scale is None else (value, scale)


def flow_matching_loss(network: nn.Module, x0: torch.Tensor) -> torch.Tensor:
    """Rectified flow, uniform times (objective/flow_matching.cpp): x_t = (1-t) x0 + t eps, target eps - x0."""
    t = torch.rand(x0.shape[0])
    noise = torch.randn_like(x0)
    tt = t[:, None]
    x_t = (1 - tt) * x0 + tt * noise
    return (network(x_t, t) - (noise - x0)).pow(2).mean()


# ---------------------------------------------------------------- training

@dataclass
class Stage:
    """One trained network: `loss(counts)` takes a (B, G) count batch."""
    name: str
    module: nn.Module
    loss: Callable[[torch.Tensor], torch.Tensor]
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0: no EMA (exprflow's VAE stage)
    # Run once before the stage's steps (e.g. encode every cell with the trained VAE); not timed.
    prepare: Optional[Callable[[torch.Tensor], None]] = None
    batch_size: Optional[int] = None  # the stage's own batch size where its defaults differ


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def time_stage(stage: Stage, counts: torch.Tensor, batch: int, steps: int, warmup: int = 2) -> float:
    """Median seconds per optimiser step after `warmup` steps, as bench_common.hpp's median_step_seconds."""
    if stage.prepare is not None:
        stage.prepare(counts)
    module = stage.module
    module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=stage.learning_rate, weight_decay=stage.weight_decay)
    ema = [p.detach().clone() for p in params] if stage.ema_decay > 0 else None
    order = torch.randperm(counts.shape[0])
    times = []
    gpu = counts.is_cuda
    for step in range(warmup + steps):
        if gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        rows = order[(step * batch) % counts.shape[0]:][:batch]
        loss = stage.loss(counts[rows])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if stage.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, stage.grad_clip)
        optimiser.step()
        if ema is not None:
            with torch.no_grad():  # multi-tensor (foreach) EMA update, as a careful PyTorch user writes it
                torch._foreach_mul_(ema, stage.ema_decay)
                torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - stage.ema_decay)
        if gpu:  # exprflow's trainer reads each step's loss, which waits for the GPU
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[warmup:])


def step_flops(stage: Stage, counts: torch.Tensor, batch: int) -> float:
    """Floating-point operations of one training step (forward + backward), as the autograd profiler
    counts them (matrix products and convolutions; elementwise work is not counted)."""
    from torch.profiler import ProfilerActivity, profile

    rows = torch.arange(batch) % counts.shape[0]
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        stage.loss(counts[rows]).backward()
    stage.module.zero_grad(set_to_none=True)
    return float(sum(e.flops for e in prof.key_averages() if e.flops))
