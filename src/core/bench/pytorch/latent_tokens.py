"""Twin of "latent_tokens" (seed Option 1; the model of ../shared/bench/pytorch_latent_dit.py with exprflow's defaults).

Expression (B, G) -> Linear(G, 2048)-LayerNorm-GELU-Linear(2048, 64*256) -> 64 tokens of width 256 + learned positions
-> 8 adaLN-Zero DiT blocks (8 heads, MLP ratio 4) conditioned on the time -> final modulation -> MLP decoder
Linear(64*256, 2048)-LayerNorm-GELU-Linear(2048, 2G) (value and variance heads) + the gene-wise input skip.
Objective: DDPM with a cosine schedule over 1,000 steps, v-prediction MSE plus the variational term (weight 0.001 x T)
that trains the learned variance (improved DDPM), as objective/ddpm.cpp.
Difference: exprflow clamps the predicted x0 in the variational term to the training data's range; the twin does not
(elementwise on (B, G), nothing beside the network's cost).
"""
import math

import torch
import torch.nn as nn

from common import DiT, ComposedNetwork, GeneStandardiser, Stage


class LatentTokenEncoder(nn.Module):
    def __init__(self, genes: int, hidden: int, n_tokens: int, token_dim: int):
        super().__init__()
        self.n_tokens, self.token_dim = n_tokens, token_dim
        self.net = nn.Sequential(nn.Linear(genes, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                 nn.Linear(hidden, n_tokens * token_dim))
        self.position = nn.Parameter(torch.randn(1, n_tokens, token_dim) * 0.02)

    def forward(self, x):
        return self.net(x).view(-1, self.n_tokens, self.token_dim) + self.position  # (B, m, d)


class MlpDecoder(nn.Module):
    """Flattened tokens -> value and variance heads per gene; zero output layer (DiT's final layer)."""

    def __init__(self, in_features: int, hidden: int, genes: int):
        super().__init__()
        self.genes = genes
        out = nn.Linear(hidden, 2 * genes)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.LayerNorm(hidden), nn.GELU(), out)

    def forward(self, h, x_t):
        value, scale = self.net(h.flatten(1)).split(self.genes, dim=1)  # 2 x (B, G)
        return value, scale


def cosine_schedule(timesteps: int):
    f = lambda t: math.cos((t / timesteps + 0.008) / 1.008 * math.pi / 2) ** 2
    beta = torch.tensor([min(1 - f(t + 1) / f(t), 0.999) for t in range(timesteps)], dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - beta, 0)
    alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    posterior_variance = beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
    # The first posterior variance is 0: its log takes the second's (improved DDPM's clipping).
    posterior_log_variance = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
    return {
        "sqrt_alpha_bar": alpha_bar.sqrt().float(),
        "sqrt_one_minus_alpha_bar": (1 - alpha_bar).sqrt().float(),
        "log_beta": beta.log().float(),
        "posterior_log_variance": posterior_log_variance.float(),
        "mean_x0": (beta * alpha_bar_prev.sqrt() / (1 - alpha_bar)).float(),
        "mean_xt": ((1 - alpha_bar_prev) * (1 - beta).sqrt() / (1 - alpha_bar)).float(),
    }


def ddpm_v_loss(network, x0, schedule, timesteps=1000, vlb_weight=0.001):
    B = x0.shape[0]
    k = torch.randint(0, timesteps, (B,))
    c = {name: v[k][:, None] for name, v in schedule.items()}  # each (B, 1)
    noise = torch.randn_like(x0)
    x_t = c["sqrt_alpha_bar"] * x0 + c["sqrt_one_minus_alpha_bar"] * noise  # (B, G)
    value, scale = network(x_t, (k.float() + 1) / timesteps)
    target = c["sqrt_alpha_bar"] * noise - c["sqrt_one_minus_alpha_bar"] * x0
    mse = (value - target).pow(2).mean()
    # Variational term on the variance only: the mean's gradient is stopped.
    eps_hat = c["sqrt_alpha_bar"] * value.detach() + c["sqrt_one_minus_alpha_bar"] * x_t
    x0_hat = (x_t - c["sqrt_one_minus_alpha_bar"] * eps_hat) / c["sqrt_alpha_bar"]
    model_mean = c["mean_x0"] * x0_hat + c["mean_xt"] * x_t
    true_mean = c["mean_x0"] * x0 + c["mean_xt"] * x_t
    fraction = (torch.tanh(scale) + 1) / 2
    model_log_var = fraction * c["log_beta"] + (1 - fraction) * c["posterior_log_variance"]  # (B, G)
    true_log_var = c["posterior_log_variance"]
    kl = 0.5 * (-1.0 + model_log_var - true_log_var + torch.exp(true_log_var - model_log_var)
                + (true_mean - model_mean).pow(2) * torch.exp(-model_log_var))  # (B, G)
    vlb = (kl * (k > 0).float()[:, None]).mean()
    return mse + vlb_weight * timesteps * vlb


def stages(name: str, genes: int, resources: dict):
    n_tokens, token_dim, hidden = 64, 256, 2048
    network = ComposedNetwork(LatentTokenEncoder(genes, hidden, n_tokens, token_dim),
                              DiT(token_dim, n_layers=8, heads=8, mlp_ratio=4.0),
                              MlpDecoder(n_tokens * token_dim, hidden, genes), token_dim, genes)
    schedule, scale = cosine_schedule(1000), GeneStandardiser(genes)
    return [Stage("model", network, lambda counts: ddpm_v_loss(network, scale(counts), schedule), prepare=scale.fit)]
