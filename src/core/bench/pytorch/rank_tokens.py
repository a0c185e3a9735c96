"""Twin of "rank_tokens" (seed Option 4, Geneformer-style rank tokens).

Architecture: each cell's n_top = 128 highest-valued genes of its (noisy, standardised) state x_t, strongest first,
become a sequence of tokens token_{b,r} = e_{g(b,r)} + x_{b,g(b,r)} w + w_0 + p_r (a unit-scale (G, 64) gene
embedding, a value direction and bias, and a learned (128, 64) rank-position embedding), giving (B, 128, 64). Four
adaLN-Zero DiT blocks (4 heads, MLP ratio 2, tanh-GELU) and the final modulation, conditioned on the time embedding;
no activation checkpointing (the dit default). The rank readout gives every gene a prediction from the mean token
(one zero-initialised Linear(64, G)) and adds, on each of the 128 selected genes, its own token's readout (a
zero-initialised Linear(64, 1) without bias) scattered back to the gene it stood for; then exprflow's gene-wise input
skip. Rectified flow with uniform times, MSE on the velocity (one output head); AdamW at 1e-3, gradient clipping 1,
EMA 0.999 (common.time_stage).

Per step, as exprflow's trainer: log-normalise the counts and standardise each gene with the mean / sd (floor 0.05)
fitted on the training cells before the first step (GeneScaling::fit; here in `prepare`, untimed, as there).

Known differences from exprflow:
- The top genes come from torch.topk (a partial selection, what a PyTorch user reaches for); exprflow selects with
  topk too, then gives ties at the k-th value to the lower gene indices and sorts the k chosen values stably (the
  first k of a stable descending sort of the G values), so that ties go to the lower gene index.
  The noisy state x_t is continuous, so ties have probability zero and both select the same genes in the same
  order. As in exprflow, the decoder recomputes the selection from x_t (the tokenizer and decoder stay separate
  modules); it is a (B, G) selection, small next to the backbone.
- No covariates (the benchmark trains unconditionally); EMA with a fixed decay and a constant learning rate, as in
  the other twins: the same work per step.
- PyTorch 1.13 has no fused scaled_dot_product_attention: common.attention then computes softmax(q k^T / sqrt(Dh)) v
  with matrix products, as exprflow's own LibTorch 1.13 build does.
"""
from typing import List

import torch
import torch.nn as nn

from common import DiT, ComposedNetwork, Stage, flow_matching_loss, GeneStandardiser

N_TOP, TOKEN_DIM = 128, 64                 # rank_tokens tokenizer defaults (models/stages.cpp)
N_LAYERS, N_HEADS, MLP_RATIO = 4, 4, 2.0   # the registry row's overrides of the dit defaults (compositions.cpp)


def top_genes(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, G) -> (B, k) indices of each cell's k highest values, highest first. Selection only: no gradient."""
    return x.detach().topk(k, dim=1, largest=True, sorted=True).indices  # (B, k)


class RankTokens(nn.Module):
    def __init__(self, genes: int, n_top: int, dim: int):
        super().__init__()
        self.n_top = min(n_top, genes)
        # Unit-scale identities, values and positions: none drowns the others at the first LayerNorm.
        self.gene = nn.Embedding(genes, dim)                            # (G, D), N(0, 1) by default
        self.value = nn.Parameter(torch.randn(dim))                     # (D,)
        self.value_bias = nn.Parameter(torch.zeros(dim))                # (D,)
        self.position = nn.Parameter(torch.randn(self.n_top, dim))      # (k, D)

    def forward(self, x):
        top = top_genes(x, self.n_top)                                  # (B, k)
        values = x.gather(1, top).unsqueeze(-1)                         # (B, k, 1), differentiable in x
        tokens = torch.addcmul(self.gene(top) + self.value_bias, values, self.value)  # (B, k, D)
        return tokens + self.position                                   # (B, k, D)


class RankReadout(nn.Module):
    """Pooled sequence -> every gene, plus each token's own readout added back on the gene it stood for."""

    def __init__(self, genes: int, n_top: int, dim: int):
        super().__init__()
        self.n_top = min(n_top, genes)
        self.pooled = nn.Linear(dim, genes)            # D -> G, from the mean token
        self.own = nn.Linear(dim, 1, bias=False)       # D -> 1, per token
        for p in (self.pooled.weight, self.pooled.bias, self.own.weight):
            nn.init.zeros_(p)                          # start at zero, as the other decoders

    def forward(self, h, x_t):
        top = top_genes(x_t, self.n_top)               # (B, k): the same genes the tokenizer picked
        out = self.pooled(h.mean(1))                   # (B, G)
        own = self.own(h).squeeze(-1)                  # (B, k)
        return out.scatter_add(1, top, own)            # (B, G)




def stages(name: str, genes: int, resources: dict) -> List[Stage]:
    network = ComposedNetwork(RankTokens(genes, N_TOP, TOKEN_DIM),
                              DiT(TOKEN_DIM, N_LAYERS, N_HEADS, MLP_RATIO),
                              RankReadout(genes, N_TOP, TOKEN_DIM), TOKEN_DIM, genes)
    scale = GeneStandardiser(genes)
    return [Stage("model", network, lambda counts: flow_matching_loss(network, scale(counts)), prepare=scale.fit)]
