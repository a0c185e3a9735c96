"""PyTorch twins of exprflow's latent compositions: "vae", "latent_mlp", "latent_dit", "latent_grn",
"latent_pathway", "cells_as_tokens" and "latent_ssm" (models/compositions.cpp), default settings.

Each is a count VAE (count_vae.py: 50 PCs -> 256 -> 256 -> 16-d Gaussian code, decoder back to a
softmax over the genes, negative-binomial likelihood, KL warm-up) trained first as the stage "vae"
(batch 128, lr 1e-3, no EMA), then, but for "vae" itself, a rectified flow over its latent codes
as the stage "latent" (batch 128, lr 1e-3, EMA 0.999). Between the stages every cell is encoded
once by the trained VAE (Stage.prepare, untimed, as api/latent_model.cpp's posteriors()); the
codes are standardised by the training cells' mean and sd (sd of a draw: var of the means + mean
posterior variance), and each latent step draws its batch's codes afresh from the posteriors
(latent_codes = "sample"): x0 = z + noise * posterior sd, then the flow-matching loss. The flow
network is tokenizer -> backbone(tokens, time) -> linear decoder + gene-wise input skip
(common.ComposedNetwork):
  latent_mlp       the 16-d code as one 512-d token, 3 residual FiLM MLP blocks (ratio 2, dropout 0.1)
  latent_dit       the code cut into 8 tokens of 2 values -> 128-d (+ learned positions), DiT 4 x 4 heads, ratio 2
  latent_grn       as latent_dit, attention along a learned sparse token graph: each token keeps itself
                   and its 3 strongest sources by learned logit, score bias log sigmoid(logit), -inf elsewhere
  latent_pathway   the VAE encodes one token per gene set (2 latent values each; count_vae.GeneSetEncoder,
                   log input); the flow has one 64-d token per encoder token, DiT 4 x 4 heads, ratio 2
  cells_as_tokens  the code as one 256-d token per cell; DiT blocks (4 x 4 heads, ratio 2) attend across
                   the cells of a set (32 consecutive cells of the batch: no covariates, one group), all
                   cells of a batch at one shared flow time
  latent_ssm       latent_dit's tokens through 4 bidirectional S4D blocks (ssm.py)

Deliberate differences from exprflow (besides count_vae.py's and ssm.py's):
- The latent stage draws its cells from its own shuffled order of the encoded cells: Stage.loss
  receives the count batch, which it uses only for its size (exprflow's latent step reads the codes
  of the trainer's cells, no counts either).
- No covariates, so cfg_dropout and the condition embedding are no-ops in both (as common.py).
- cells_as_tokens masks attention across sets with a (B, B) additive bias, as exprflow does;
  reshaping into (B / 32, 32) sets would be cheaper but needs equal sets.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import ComposedNetwork, DiT, DiTBlock, FinalModulation, Stage
from count_vae import CountVae, posteriors, vae_loss
from ssm import SsmBackbone
from state_mlp import LinearDecoder, ResidualMlp, StateVector  # the same parts as state_mlp's

LATENT = {  # composition -> the kind of flow network flow_network() builds (defaults there)
    "latent_mlp": "state_mlp",
    "latent_dit": "dit",
    "latent_grn": "learned_graph",
    "latent_pathway": "dit",
    "cells_as_tokens": "cell_set",
    "latent_ssm": "ssm",
}


# ---------------------------------------------------------------- tokenizer

class LatentSplit(nn.Module):
    """The code cut into n_tokens chunks, each mapped to dim, plus a learned position (tokenize/latent_split.cpp)."""

    def __init__(self, latent_dim: int, n_tokens: int, dim: int):
        super().__init__()
        self.n_tokens, self.chunk = n_tokens, latent_dim // n_tokens
        self.linear_in = nn.Linear(self.chunk, dim)
        self.position = nn.Parameter(torch.randn(n_tokens, dim) * 0.02)  # (T, D)

    def forward(self, z):
        return self.linear_in(z.view(z.shape[0], self.n_tokens, self.chunk)) + self.position  # (B, T, D)




class LearnedGraphDiT(nn.Module):
    """DiT blocks attending along a learned sparse token graph (backbone/learned_graph_dit.cpp):
    token i attends to itself and its `degree` strongest sources j by logit, weighted by sigmoid(logit).
    The graph is re-chosen from the logits at every step; only kept edges get gradients."""

    def __init__(self, n_tokens: int, dim: int, n_layers: int, heads: int, mlp_ratio: float, degree: int):
        super().__init__()
        self.degree = min(degree, n_tokens - 1)
        self.edge_logits = nn.Parameter(torch.randn(n_tokens, n_tokens) * 0.1)  # (T, T) row target, column source
        self.blocks = nn.ModuleList([DiTBlock(dim, heads, mlp_ratio) for _ in range(n_layers)])
        self.final = FinalModulation(dim)

    def attention_bias(self):
        T = self.edge_logits.shape[0]
        self_loops = torch.eye(T, dtype=torch.bool)                                     # (T, T)
        kept = self_loops.clone()
        if self.degree > 0:  # the diagonal is always kept: it does not compete for the places
            others = self.edge_logits.detach().masked_fill(self_loops, float("-inf"))
            kept.scatter_(1, others.topk(self.degree, dim=1).indices, True)              # (T, T)
        return F.logsigmoid(self.edge_logits).masked_fill(~kept, float("-inf"))         # (T, T)

    def forward(self, x, c):
        bias = self.attention_bias()  # one graph for every block
        for block in self.blocks:
            x = block(x, c, bias)
        return self.final(x, c)       # (B, T, D)


class CellSetDiT(nn.Module):
    """DiT blocks attending across the cells of a set instead of the tokens of a cell
    (backbone/cell_set_dit.cpp): sets of `set_size` consecutive cells of the batch (one group)."""

    def __init__(self, dim: int, n_layers: int, heads: int, mlp_ratio: float, set_size: int):
        super().__init__()
        self.set_size = set_size
        self.blocks = nn.ModuleList([DiTBlock(dim, heads, mlp_ratio) for _ in range(n_layers)])
        self.final = FinalModulation(dim)

    def forward(self, tokens, c):
        B, T, D = tokens.shape
        sets = torch.arange(B) // self.set_size                                          # (B,)
        bias = torch.zeros(B, B).masked_fill(sets[:, None] != sets[None, :], float("-inf"))  # (B, B)
        x = tokens.transpose(0, 1)                                 # (T, B, D): the cells are the sequence
        per_cell = c.unsqueeze(0).expand(T, B, D)                  # (T, B, D): modulation stays per cell
        for block in self.blocks:
            x = block(x, per_cell, bias)
        return self.final(x, per_cell).transpose(0, 1)             # (B, T, D)


# ---------------------------------------------------------------- networks and stages

def flow_network(name: str, latent_dim: int) -> ComposedNetwork:
    kind = LATENT[name]
    if kind == "state_mlp":        # tokenizer state_vector (hidden 512), residual_mlp 3 x ratio 2
        dim, tokens = 512, 1
        tokenizer, backbone = StateVector(latent_dim, dim), ResidualMlp(dim, 3, 2.0, 0.1)
    elif kind == "cell_set":       # state_vector (hidden 256), cell_set_dit 4 x 4 heads, ratio 2, sets of 32
        dim, tokens = 256, 1
        tokenizer, backbone = StateVector(latent_dim, dim), CellSetDiT(dim, 4, 4, 2.0, 32)
    else:                          # latent_split: 8 tokens of 128, or one 64-d token per gene-set token
        tokens, dim = (latent_dim // 2, 64) if name == "latent_pathway" else (8, 128)
        tokenizer = LatentSplit(latent_dim, tokens, dim)
        if kind == "dit":
            backbone = DiT(dim, 4, 4, 2.0)
        elif kind == "learned_graph":
            backbone = LearnedGraphDiT(tokens, dim, 4, 4, 2.0, 3)
        else:
            backbone = SsmBackbone(dim, 4, 16, 2.0, 0.1)
    return ComposedNetwork(tokenizer, backbone, LinearDecoder(tokens * dim, latent_dim), dim, latent_dim)


def latent_stage(name: str, vae: CountVae) -> Stage:
    network = flow_network(name, vae.latent_dim)
    shared_time = name == "cells_as_tokens"  # its override shared_time = 1: one time per covariate group
    codes = {}

    def prepare(counts):
        mean, var = posteriors(vae, counts)                                  # (N, d) each
        z_mean = mean.mean(0)                                                # (d,)
        z_sd = (mean.var(0) + var.mean(0)).sqrt().clamp_min(1e-3)            # sd of a draw, per dimension
        codes["z"] = (mean - z_mean) / z_sd                                  # (N, d) standardised
        codes["noise_sd"] = var.sqrt() / z_sd                                # (N, d)
        codes["order"], codes["next"] = torch.randperm(mean.shape[0]), 0

    def loss(counts):
        B, N = counts.shape[0], codes["z"].shape[0]
        if codes["next"] + B > N:  # a new epoch: a new order
            codes["order"], codes["next"] = torch.randperm(N), 0
        cells = codes["order"][codes["next"]:codes["next"] + B]
        codes["next"] += B
        x0 = codes["z"][cells]                                               # (B, d)
        x0 = x0 + codes["noise_sd"][cells] * torch.randn_like(x0)             # a fresh draw from q(z | x)
        t = torch.rand(B)                                                    # (B,)
        if shared_time:
            t = t[:1].expand(B)                                              # one group: the first cell's time
        noise = torch.randn_like(x0)
        tt = t[:, None]
        x_t = (1 - tt) * x0 + tt * noise                                     # (B, d) rectified flow
        return (network(x_t, t) - (noise - x0)).pow(2).mean()

    return Stage("latent", network, loss, prepare=prepare)


def stages(name: str, genes: int, resources: dict) -> list:
    if name != "vae" and name not in LATENT:
        raise ValueError(f"latent_models has no twin of '{name}'")
    if name == "latent_pathway":  # vae_encoder = "gene_sets", vae_input = "log"
        vae = CountVae(genes, gene_sets=resources["gene_sets"])
    else:
        vae = CountVae(genes)
    prepare, loss = vae_loss(vae)
    first = Stage("vae", vae, loss, ema_decay=0.0, prepare=prepare)
    return [first] if name == "vae" else [first, latent_stage(name, vae)]
