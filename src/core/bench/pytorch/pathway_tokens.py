"""Twin of "pathway_tokens" (seed Option 2: one token per gene set).

Architecture: the gene-set membership resources["gene_sets"] (S, G) is laid out as (token, gene) pairs grouped by
token, the genes in no set forming one more, residual, token (T = S + 1 tokens). Each token is a linear projection of
its member genes' standardised log expression, token_s = sum_{g in s} x_g w_{s,g} + b_s (w: one (pairs, 64) weight,
each token's rows a contiguous slice), giving (B, T, 64). Four adaLN-Zero DiT blocks (4 heads, MLP ratio 2, tanh-GELU)
and the final modulation, conditioned on the time embedding. The pathway decoder is the tokenizer's adjoint: each token
predicts its member genes through its own zero-initialised (pairs, 64) weight, a gene in several sets gets the mean of
their predictions, plus a per-gene bias; then exprflow's gene-wise input skip. Rectified flow with uniform times, MSE on
the velocity; AdamW at 3e-3 (the registry row's learning rate), gradient clipping 1, EMA 0.999.

Per step, as exprflow's trainer: log-normalise the counts and standardise each gene with the mean / sd (floor 0.05)
fitted on the training cells before the first step (GeneScaling::fit; here in `prepare`, untimed, as there).

Known differences from exprflow:
- The synthetic gene sets come from common.synthetic_gene_sets (torch's generator), not bench_common.hpp's mt19937_64:
  same shape (44 sets of 34 draws over the first 40% of the genes), different members, so the number of (set, gene)
  pairs -- and with it the parameter count, 2 x 64 weights per pair -- differs by a few hundred parameters.
- PyTorch 1.13 has no fused scaled_dot_product_attention; common.attention falls back to softmax(q k^T / sqrt(d)) v,
  as exprflow built against LibTorch 1.13 does too.
- No covariates (the benchmark trains unconditionally): exprflow's classifier-free dropout of covariates is a no-op.
- EMA with a fixed decay (exprflow warms it up as min(decay, (1 + step) / (10 + step))) and a constant learning rate
  (exprflow's warm-up / cosine schedule sets it once per step): the same work per step.
"""
from typing import List

import torch
import torch.nn as nn

from common import DiT, ComposedNetwork, Stage, flow_matching_loss, GeneStandardiser

TOKEN_DIM = 64  # tokenizer default (models/stages.cpp); the registry row keeps it
N_LAYERS, N_HEADS, MLP_RATIO = 4, 4, 2.0  # the registry row's overrides of the DiT defaults
LEARNING_RATE = 3e-3


class GeneSetLayout:
    """(token, gene) pairs grouped by token: the sets in row order, then a residual token for the genes in no set."""

    def __init__(self, member: torch.Tensor):
        sets, genes = member.shape
        set_idx, gene_idx = member.nonzero(as_tuple=True)     # row-major: grouped by set, genes ascending
        covered = torch.zeros(genes, dtype=torch.bool)
        covered[gene_idx] = True
        residual = (~covered).nonzero(as_tuple=True)[0]       # genes in no set, ascending
        self.pair_gene = torch.cat([gene_idx, residual])      # (E,)
        self.sizes: List[int] = torch.bincount(set_idx, minlength=sets).tolist()
        if len(residual) > 0:
            self.sizes.append(len(residual))
        holders = torch.bincount(self.pair_gene, minlength=genes).float()  # tokens holding each gene (>= 1)
        self.gene_share = 1.0 / holders                       # (G,) mean over the sets of a gene
        self.n_genes, self.n_tokens, self.n_pairs = genes, len(self.sizes), len(self.pair_gene)


class PathwayTokens(nn.Module):
    """(B, G) -> (B, T, D): each token a linear map of its own genes (one small matmul per token slice)."""

    def __init__(self, layout: GeneSetLayout, dim: int):
        super().__init__()
        self.sizes = layout.sizes
        self.register_buffer("pair_gene", layout.pair_gene)
        self.weight = nn.Parameter(torch.empty(layout.n_pairs, dim))  # (E, D)
        self.bias = nn.Parameter(torch.zeros(layout.n_tokens, dim))   # (T, D): tells the tokens apart
        with torch.no_grad():  # as nn.Linear with the token's genes as inputs: small and large sets start alike
            for w in self.weight.split(self.sizes, 0):
                bound = 1.0 / w.shape[0] ** 0.5
                w.uniform_(-bound, bound)

    def forward(self, x):
        members = x.index_select(1, self.pair_gene)  # (B, E) genes in pair order
        tokens = [xs @ ws for xs, ws in zip(members.split(self.sizes, 1), self.weight.split(self.sizes, 0))]
        return torch.stack(tokens, 1) + self.bias    # (B, T, D)


class PathwayDecoder(nn.Module):
    """(B, T, D) -> (B, G): each token predicts its own genes; a gene in several sets gets their mean."""

    def __init__(self, layout: GeneSetLayout, dim: int):
        super().__init__()
        self.sizes, self.genes = layout.sizes, layout.n_genes
        self.register_buffer("pair_gene", layout.pair_gene)
        self.register_buffer("gene_share", layout.gene_share)
        self.weight = nn.Parameter(torch.zeros(layout.n_pairs, dim))  # (E, D), zero: the untrained net predicts 0
        self.bias = nn.Parameter(torch.zeros(layout.n_genes))         # (G,)

    def forward(self, h, x_t):
        pairs = torch.cat([h[:, t] @ u.t() for t, u in enumerate(self.weight.split(self.sizes, 0))], 1)  # (B, E)
        genes = h.new_zeros(h.shape[0], self.genes).index_add_(1, self.pair_gene, pairs)  # (B, G) sum over sets
        return genes * self.gene_share + self.bias  # (B, G) mean over sets




def stages(name: str, genes: int, resources: dict) -> List[Stage]:
    layout = GeneSetLayout(resources["gene_sets"])
    network = ComposedNetwork(PathwayTokens(layout, TOKEN_DIM), DiT(TOKEN_DIM, N_LAYERS, N_HEADS, MLP_RATIO),
                              PathwayDecoder(layout, TOKEN_DIM), TOKEN_DIM, genes)
    scale = GeneStandardiser(genes)
    return [Stage("model", network, lambda counts: flow_matching_loss(network, scale(counts)),
                  learning_rate=LEARNING_RATE, prepare=scale.fit)]
