"""Twin of "state_mlp" (seed Option A: no tokens).

Expression (B, G) -> Linear(G, 512) as one token -> 3 residual FiLM blocks (LayerNorm without affine, FiLM shift /
scale / gate from the time, Linear(512, 1024)-SiLU-dropout 0.1-Linear(1024, 512)) -> final modulation -> Linear(512, G)
(zero-initialised) + the gene-wise input skip. Rectified flow, uniform times; learning rate 3e-3 (its registry row).
"""
import torch.nn as nn
import torch.nn.functional as F

from common import (ComposedNetwork, FinalModulation, GeneStandardiser, Stage, flow_matching_loss, modulate,
                    zero_linear)


class StateVector(nn.Module):
    def __init__(self, genes: int, hidden: int):
        super().__init__()
        self.linear_in = nn.Linear(genes, hidden)

    def forward(self, x):
        return self.linear_in(x).unsqueeze(1)  # (B, 1, D)


class FilmBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(int(dim * mlp_ratio), dim))
        self.film = zero_linear(dim, 3 * dim)

    def forward(self, x, c):
        shift, scale, gate = self.film(F.silu(c)).chunk(3, dim=1)  # 3 x (B, D)
        return x + gate.unsqueeze(1) * self.mlp(modulate(self.norm(x), shift, scale))  # (B, T, D)


class ResidualMlp(nn.Module):
    def __init__(self, dim: int, n_layers: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList([FilmBlock(dim, mlp_ratio, dropout) for _ in range(n_layers)])
        self.final = FinalModulation(dim)

    def forward(self, x, c):
        for block in self.blocks:
            x = block(x, c)
        return self.final(x, c)  # (B, T, D)


class LinearDecoder(nn.Module):
    def __init__(self, in_features: int, genes: int):
        super().__init__()
        self.linear_out = zero_linear(in_features, genes)

    def forward(self, h, x_t):
        return self.linear_out(h.flatten(1))  # (B, G)


def stages(name: str, genes: int, resources: dict):
    hidden = 512
    network = ComposedNetwork(StateVector(genes, hidden), ResidualMlp(hidden, 3, 2.0, 0.1),
                              LinearDecoder(hidden, genes), hidden, genes)
    scale = GeneStandardiser(genes)
    return [Stage("model", network, lambda counts: flow_matching_loss(network, scale(counts)), learning_rate=3e-3,
                  prepare=scale.fit)]
