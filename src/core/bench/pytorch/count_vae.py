"""The count VAE of exprflow's latent models (models/count_vae.cpp), as a PyTorch twin.

Used by latent_models.py for the compositions "vae", "latent_mlp", "latent_dit", "latent_grn",
"latent_pathway", "cells_as_tokens" and "latent_ssm" (their first stage).

Architecture (CountVaeSettings::defaults): scVI's module. The encoder reads the log1p-normalised
cell projected on 50 principal axes of the training cells (vae_input = "pca"), then
Linear(50, 256) -> [LayerNorm, SiLU, Dropout(0.1)] -> Linear(256, 256) -> [LayerNorm, SiLU,
Dropout] -> Linear(256, 2 x 16): the mean and log-variance of q(z | x) (log-variance clamped at
10, variance + 1e-4). The decoder mirrors it from the 16-d code to a softmax over the genes (the
share of the cell's library per gene); the likelihood is a negative binomial with one inverse
dispersion per gene (stored log theta / 10, as exprflow's kDispersionStep). The loss is the
negative ELBO per cell, -log NB(counts | rate * library, theta) + beta * KL(q || N(0, I)),
averaged over the batch; beta rises linearly from 0 over the first quarter of the run (kl_warmup).
latent_pathway's VAE (vae_encoder = "gene_sets", vae_input = "log") replaces the MLP encoder by one
token per gene set (a linear map of the set's genes, plus a residual token for the genes in no
set) and a small per-token MLP that gives each token 2 latent values (models/token_encoder.cpp).

Deliberate differences from exprflow:
- The NB log-likelihood is scVI's formula (log_nb_positive), as a PyTorch user writes it.
  exprflow additionally evaluates a Stirling expansion of lgamma(x + theta) - lgamma(theta) for
  theta > 10 (float32 cancellation at large theta) and selects per element with where(): about
  twice the elementwise work on the (B, G) batch if written with LibTorch's ops. The same function
  (they differ only by float32 rounding at large theta); the twin omits the second branch.
- The principal axes come from torch.pca_lowrank (randomised, 4 power iterations: the same
  algorithm as data/principal_axes.cpp), fitted once before the stage, untimed as in exprflow.
- exprflow's trainer also runs its EMA update at decay 0 (a copy of every parameter per step);
  the twin's stage skips EMA at decay 0 (common.time_stage).
"""
import math

import torch
import torch.nn as nn

from common import log_normalise

DISPERSION_STEP = 10.0    # log theta = 10 x the stored parameter (CountVaeImpl::kDispersionStep)
MIN_POSTERIOR_VAR = 1e-4  # added to the posterior variance, as scVI does
EPS = 1e-8                # inside the logs of mu (decode/likelihood.cpp)


def nb_log_prob(x: torch.Tensor, mu: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """log NB(x; mean mu, inverse dispersion theta), scVI's log_nb_positive. (B, G)"""
    theta = log_theta.clamp(-30.0, 40.0).exp()           # (G,): clamped as exprflow, so exp() stays finite
    log_theta_mu = torch.log(theta + mu + EPS)           # (B, G)
    return (theta * (torch.log(theta + EPS) - log_theta_mu) + x * (torch.log(mu + EPS) - log_theta_mu)
            + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))  # (B, G)


def hidden_stack(width: int, n_layers: int, dropout: float) -> nn.Sequential:
    """[LayerNorm, SiLU, Dropout] then (n_layers - 1) x [Linear, LayerNorm, SiLU, Dropout]."""
    layers = [nn.LayerNorm(width), nn.SiLU(), nn.Dropout(dropout)]
    for _ in range(n_layers - 1):
        layers += [nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class GeneSetTokens(nn.Module):
    """One token per gene set: token_s = sum_{g in s} x_g w_{s,g} + b_s (tokenize/pathway_tokens.cpp),
    plus a residual token for the genes in no set. The (set, gene) pairs' weights are one (E, D)
    parameter; each token is a small matmul over its own contiguous slice."""

    def __init__(self, gene_sets: torch.Tensor, dim: int):
        super().__init__()
        members = [row.nonzero().flatten() for row in gene_sets]   # genes of each set, in gene order
        in_none = (gene_sets.sum(0) == 0).nonzero().flatten()
        if in_none.numel() > 0:
            members.append(in_none)                                  # the residual token
        self.sizes = [int(m.numel()) for m in members]
        self.register_buffer("pair_gene", torch.cat(members))      # (E,)
        self.weight = nn.Parameter(torch.empty(int(self.pair_gene.numel()), dim))  # (E, D)
        self.bias = nn.Parameter(torch.zeros(len(members), dim))   # (T, D)
        with torch.no_grad():  # nn.Linear's init with the token's genes as inputs
            for w, n in zip(self.weight.split(self.sizes), self.sizes):
                w.uniform_(-1 / math.sqrt(n), 1 / math.sqrt(n))

    @property
    def n_tokens(self) -> int:
        return len(self.sizes)

    def forward(self, x):
        members = x.index_select(1, self.pair_gene)                # (B, E) genes in pair order
        tokens = [m @ w for m, w in zip(members.split(self.sizes, 1), self.weight.split(self.sizes))]
        return torch.stack(tokens, 1) + self.bias                  # (B, T, D)


class GeneSetEncoder(nn.Module):
    """Token encoder (models/token_encoder.cpp): gene-set tokens, then a per-token MLP shared by the
    tokens, giving each token `per_token` latent means and log-variances."""

    def __init__(self, gene_sets: torch.Tensor, hidden: int, per_token: int, dropout: float):
        super().__init__()
        self.per_token = per_token
        self.tokens = GeneSetTokens(gene_sets, hidden)
        self.mlp = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 2 * per_token))

    @property
    def latent_dim(self) -> int:
        return self.tokens.n_tokens * self.per_token

    def forward(self, x):
        out = self.mlp(self.tokens(x))                             # (B, T, 2k)
        mean, log_var = out.split(self.per_token, -1)              # (B, T, k) each
        return mean.flatten(1), log_var.flatten(1)                 # (B, d): token-major code


class CountVae(nn.Module):
    def __init__(self, genes: int, latent_dim: int = 16, hidden: int = 256, n_layers: int = 2,
                 dropout: float = 0.1, input_pcs: int = 50, gene_sets: torch.Tensor = None,
                 token_hidden: int = 32, latent_per_token: int = 2):
        super().__init__()
        if gene_sets is not None:  # vae_encoder = "gene_sets": reads log expression, no projection
            self.encoder = GeneSetEncoder(gene_sets, token_hidden, latent_per_token, dropout)
            latent_dim = self.encoder.latent_dim
            self.register_buffer("input_mean", None)
            self.register_buffer("input_rotation", None)
        else:      # vae_input = "pca": the MLP reads the first input_pcs principal components
            n_inputs = min(input_pcs, genes)
            self.register_buffer("input_mean", torch.zeros(genes))                 # (G,)
            self.register_buffer("input_rotation", torch.zeros(genes, n_inputs))   # (G, k)
            self.encoder = nn.Sequential(nn.Linear(n_inputs, hidden), hidden_stack(hidden, n_layers, dropout),
                                         nn.Linear(hidden, 2 * latent_dim))
        self.latent_dim = latent_dim
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), hidden_stack(hidden, n_layers, dropout),
                                     nn.Linear(hidden, genes))
        self.log_theta = nn.Parameter(torch.zeros(genes))  # (G,), x DISPERSION_STEP

    def fit_projection(self, log_expression: torch.Tensor) -> None:
        """Principal axes of the training cells' log expression (randomised SVD, as exprflow)."""
        k = self.input_rotation.shape[1]
        mean = log_expression.mean(0)                                                   # (G,)
        _, _, v = torch.pca_lowrank(log_expression, q=min(k + 10, *log_expression.shape), center=True, niter=4)
        self.input_mean.copy_(mean)
        self.input_rotation.copy_(v[:, :k])                                             # (G, k)

    def encode(self, x):
        """q(z | x) from log1p-normalised expression (B, G): mean and variance, (B, d) each."""
        if self.input_rotation is None:
            mean, log_var = self.encoder(x)                                              # (B, d) each
        else:
            # (x - m) R = x R - m R: no centred (B, G) copy
            pcs = x @ self.input_rotation - self.input_mean @ self.input_rotation        # (B, k)
            mean, log_var = self.encoder(pcs).chunk(2, dim=-1)                           # (B, d) each
        return mean, log_var.clamp_max(10.0).exp() + MIN_POSTERIOR_VAR                  # clamped: no overflow early on

    def negative_elbo(self, counts, beta: float):
        """Mean over the cells of -log p(counts | z) + beta KL(q(z | x) || N(0, I))."""
        library = counts.sum(1)                                                # (B,) observed library sizes
        mean, var = self.encode(log_normalise(counts))                         # (B, d) each
        z = mean + var.sqrt() * torch.randn_like(mean)                         # (B, d) reparameterised draw
        mu = self.decoder(z).softmax(-1) * library[:, None]                    # (B, G) expected counts
        reconstruction = -nb_log_prob(counts, mu, self.log_theta * DISPERSION_STEP).sum(1)  # (B,)
        kl = 0.5 * (var + mean.pow(2) - 1.0 - var.log()).sum(1)                             # (B,)
        return (reconstruction + beta * kl).mean()


def vae_loss(vae: CountVae, kl_warmup: float = 0.25, kl_weight: float = 1.0, batch_size: int = 128):
    """(prepare, loss) of the VAE stage: prepare fits the input projection (if any) and the KL
    warm-up's length on all cells; loss(counts) is one step's negative ELBO with the warmed-up beta."""
    state = {"step": 0, "warmup_steps": 0.0}

    def prepare(counts):
        # The bench trains one epoch: the warm-up is kl_warmup of its steps (api/latent_model.cpp).
        state["warmup_steps"] = kl_warmup * math.ceil(counts.shape[0] / batch_size)
        if vae.input_rotation is not None:
            with torch.no_grad():
                vae.fit_projection(log_normalise(counts))

    def loss(counts):
        w = state["warmup_steps"]
        beta = kl_weight * (min(1.0, state["step"] / w) if w > 0 else 1.0)
        state["step"] += 1
        return vae.negative_elbo(counts, beta)

    return prepare, loss


@torch.no_grad()
def posteriors(vae: CountVae, counts: torch.Tensor, batch_size: int = 512):
    """Every cell's posterior mean and variance (N, d), encoded by the trained VAE in eval mode
    (exprflow's LatentModel::posteriors reads the VAE's average copy, which is in eval mode)."""
    was_training = vae.training
    vae.eval()
    parts = [vae.encode(log_normalise(counts[lo:lo + batch_size])) for lo in range(0, counts.shape[0], batch_size)]
    vae.train(was_training)
    return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])  # (N, d) each
