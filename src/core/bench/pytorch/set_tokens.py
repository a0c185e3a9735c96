"""Twin of "set_tokens" (seed Option C, scLDM-style set pooling).

Architecture: the cell as an unordered set of G gene tokens e_g + x_g w + w_0 (a unit-scale (G, 64) gene embedding, a
value direction and bias; no positions), giving (B, G, 64), pooled into n_tokens = 16 latent tokens by
pooling-by-multihead-attention: 16 unit-scale learned seeds attend over the gene tokens through one pre-norm
cross-attention layer (4 heads; LayerNorms on the queries, the memory and before the MLP; MLP ratio 2 with exact
GELU; no dropout). Four adaLN-Zero DiT blocks (4 heads, MLP ratio 2, tanh-GELU) and the final modulation over the
(B, 16, 64) tokens, conditioned on the time embedding; no activation checkpointing (the dit default). Set unpooling:
each gene's unit-scale learned query (G, 64) attends to the 16 tokens through a second such cross-attention layer,
and the resulting (B, G, 64) gene tokens are read out by one zero-initialised Linear(64, 1) shared by the genes plus
a per-gene bias; then exprflow's gene-wise input skip. Rectified flow with uniform times, MSE on the velocity (one
output head); AdamW at 1e-3, gradient clipping 1, EMA 0.999 (common.time_stage).

Per step, as exprflow's trainer: log-normalise the counts and standardise each gene with the mean / sd (floor 0.05)
fitted on the training cells before the first step (GeneScaling::fit; here in `prepare`, untimed, as there).

Known differences from exprflow:
- The seeds and gene queries are expanded to the batch before their layer, as the Set Transformer's PMA does, so
  the queries' LayerNorm and projection run once per cell although they are the same for every cell. exprflow
  (since 0b7c552) runs them once on (1, T, D) and broadcasts; the values are the same.
- No covariates (the benchmark trains unconditionally); EMA with a fixed decay and a constant learning rate, as in
  the other twins: the same work per step.
- PyTorch 1.13 has no fused scaled_dot_product_attention: common.attention then computes softmax(q k^T / sqrt(Dh)) v
  with matrix products, as exprflow's own LibTorch 1.13 build does.
"""
from typing import List

import torch
import torch.nn as nn

from common import DiT, ComposedNetwork, GeneStandardiser, GeneValueTokens, Stage, attention, flow_matching_loss

N_TOKENS, TOKEN_DIM, POOL_HEADS = 16, 64, 4   # set_pooling tokenizer / set_unpooling decoder defaults (stages.cpp)
N_LAYERS, N_HEADS, MLP_RATIO = 4, 4, 2.0      # the registry row's overrides of the dit defaults (compositions.cpp)
POOL_MLP_RATIO = 2.0                          # the pooling layers' own MLP (fixed in the C++)


class CrossAttentionLayer(nn.Module):
    """Pre-norm cross-attention layer: x <- x + Proj(Attn(LN(x), LN_m(memory))); x <- x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        hidden = int(mlp_ratio * dim)
        self.norm = nn.LayerNorm(dim)
        self.norm_memory = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)       # keys and values in one product over the long memory
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x, memory):
        B, T, D = x.shape
        S, H = memory.shape[1], self.heads
        q = self.query(self.norm(x)).view(B, T, H, D // H).transpose(1, 2)                      # (B, H, T, Dh)
        kv = self.key_value(self.norm_memory(memory))                                          # (B, S, 2D)
        k, v = kv.view(B, S, 2, H, D // H).permute(2, 0, 3, 1, 4)                               # 2 x (B, H, S, Dh)
        x = x + self.proj(attention(q, k, v).transpose(1, 2).reshape(B, T, D))                  # (B, T, D)
        return x + self.mlp(self.norm_mlp(x))                                                   # (B, T, D)


class SetPoolingTokens(nn.Module):
    """Gene x value tokens pooled into n_tokens latent tokens by learned seeds (order-invariant, O(m G))."""

    def __init__(self, genes: int, n_tokens: int, dim: int, heads: int):
        super().__init__()
        self.genes = GeneValueTokens(genes, dim)
        # Unit-scale seeds: distinct queries from the first step, not copies of one another.
        self.seeds = nn.Parameter(torch.randn(n_tokens, dim))    # (m, D)
        self.pool = CrossAttentionLayer(dim, heads, POOL_MLP_RATIO)

    def forward(self, x):
        genes = self.genes(x)                                                             # (B, G, D)
        seeds = self.seeds.expand(x.shape[0], -1, -1)                                     # (B, m, D)
        return self.pool(seeds, genes)                                                    # (B, m, D)


class SetUnpooling(nn.Module):
    """Each gene's learned query attends to the tokens; the gene tokens are read out by one shared map + bias."""

    def __init__(self, genes: int, dim: int, heads: int):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(genes, dim))     # (G, D)
        self.unpool = CrossAttentionLayer(dim, heads, POOL_MLP_RATIO)
        self.readout = nn.Linear(dim, 1, bias=False)             # D -> 1, shared by the genes
        nn.init.zeros_(self.readout.weight)                      # start at zero, as the other decoders
        self.bias = nn.Parameter(torch.zeros(genes))             # (G,)

    def forward(self, h, x_t):
        queries = self.queries.expand(h.shape[0], -1, -1)                     # (B, G, D)
        return self.readout(self.unpool(queries, h)).squeeze(-1) + self.bias  # (B, G)


def stages(name: str, genes: int, resources: dict) -> List[Stage]:
    network = ComposedNetwork(SetPoolingTokens(genes, N_TOKENS, TOKEN_DIM, POOL_HEADS),
                              DiT(TOKEN_DIM, N_LAYERS, N_HEADS, MLP_RATIO),
                              SetUnpooling(genes, TOKEN_DIM, POOL_HEADS), TOKEN_DIM, genes)
    scale = GeneStandardiser(genes)
    return [Stage("model", network, lambda counts: flow_matching_loss(network, scale(counts)), prepare=scale.fit)]
