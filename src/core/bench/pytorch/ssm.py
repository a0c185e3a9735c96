"""The state-space backbone of exprflow's "latent_ssm" composition (backbone/ssm.cpp, backbone/s4d.cpp),
as a PyTorch twin; used by latent_models.py.

Architecture (backbone "ssm" defaults: 4 blocks, ssm_layer "s4d", state_size 16, mlp_ratio 2,
dropout 0.1): a DiT-shaped stack whose attention is a bidirectional S4D mixer. Each block, with
adaLN-Zero modulation by the time embedding c (one zero-initialised D -> 6D layer):
  h = modulate(LayerNorm(x)); x = x + gate1 * GLU(Linear(D, 2D)(GELU(S4D_fwd(h) + flip(S4D_bwd(flip(h))))))
  h = modulate(LayerNorm(x)); x = x + gate2 * W2 Dropout(GELU_tanh(W1 h))
then the final adaLN modulation. S4D (Gu et al. 2022) is written as the authors' minimal PyTorch
S4D (state-spaces/s4, models/s4/s4d.py): complex diagonal A = -exp(log_A_real) + i A_imag
(S4D-Lin init), zero-order hold, the kernel K_l = 2 Re(sum_n C_n Bbar_n Abar_n^l) as a Vandermonde
product, applied as a causal FFT convolution of length 2L, plus the D skip.

Deliberate differences from exprflow: the kernel uses PyTorch complex tensors (C stored as an
(H, N/2, 2) real view, the authors' form); exprflow keeps real and imaginary parts as separate real
tensors (LibTorch 1.13). Same parameters, same count, same arithmetic up to rounding.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import FinalModulation, modulate, zero_linear


class S4D(nn.Module):
    """Depthwise causal S4D layer: (B, L, H) -> (B, L, H)."""

    def __init__(self, channels: int, state_size: int = 16, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        modes = state_size // 2  # N/2 complex entries; their conjugates are implied (the 2 Re below)
        self.log_dt = nn.Parameter(torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_A_real = nn.Parameter(torch.full((channels, modes), math.log(0.5)))          # (H, N/2)
        self.A_imag = nn.Parameter(math.pi * torch.arange(modes).float().repeat(channels, 1))  # (H, N/2) S4D-Lin
        self.C = nn.Parameter(torch.randn(channels, modes, 2) * math.sqrt(0.5))  # (H, N/2, 2): complex normal
        self.D = nn.Parameter(torch.randn(channels))                              # (H,)

    def kernel(self, length: int) -> torch.Tensor:
        dt = self.log_dt.exp()                                          # (H,)
        A = torch.complex(-self.log_A_real.exp(), self.A_imag)          # (H, N/2)
        dtA = A * dt[:, None]                                           # (H, N/2)
        C = torch.view_as_complex(self.C) * (dtA.exp() - 1.0) / A        # (H, N/2): C Bbar, zero-order hold
        powers = (dtA[:, :, None] * torch.arange(length, device=A.device)).exp()  # (H, N/2, L): Abar^l
        return 2 * torch.einsum("hn,hnl->hl", C, powers).real           # (H, L)

    def forward(self, u):
        L = u.shape[1]
        x = u.transpose(1, 2)                                           # (B, H, L)
        # zero-padded to 2L: the FFT's circular convolution becomes the causal one on the first L
        spectrum = torch.fft.rfft(x, n=2 * L) * torch.fft.rfft(self.kernel(L), n=2 * L)  # (B, H, L + 1)
        y = torch.fft.irfft(spectrum, n=2 * L)[..., :L]                 # (B, H, L)
        return y.transpose(1, 2) + u * self.D                           # (B, L, H)


class SsmBlock(nn.Module):
    def __init__(self, dim: int, state_size: int, mlp_ratio: float, dropout: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.forward_layer = S4D(dim, state_size)   # token t sees tokens <= t
        self.backward_layer = S4D(dim, state_size)  # over the reversed sequence: token t sees tokens >= t
        self.s4d_out = nn.Linear(dim, 2 * dim)      # channel mixing with a GLU, as S4's block
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp_in = nn.Linear(dim, hidden)
        self.mlp_out = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        self.modulation = zero_linear(dim, 6 * dim)  # adaLN-Zero: a fresh block is the identity

    def mix(self, h):
        both = self.forward_layer(h) + self.backward_layer(h.flip(1)).flip(1)  # (B, T, D)
        return F.glu(self.s4d_out(F.gelu(both)), dim=-1)                       # (B, T, D)

    def forward(self, x, c):
        s1, g1, a1, s2, g2, a2 = self.modulation(F.silu(c)).chunk(6, dim=-1)   # 6 x (B, D)
        x = x + a1.unsqueeze(1) * self.mix(modulate(self.norm1(x), s1, g1))
        h = self.mlp_out(self.dropout(F.gelu(self.mlp_in(modulate(self.norm2(x), s2, g2)), approximate="tanh")))
        return x + a2.unsqueeze(1) * h                                          # (B, T, D)


class SsmBackbone(nn.Module):
    def __init__(self, dim: int, n_layers: int = 4, state_size: int = 16, mlp_ratio: float = 2.0,
                 dropout: float = 0.1):
        super().__init__()
        self.blocks = nn.ModuleList([SsmBlock(dim, state_size, mlp_ratio, dropout) for _ in range(n_layers)])
        self.final = FinalModulation(dim)

    def forward(self, x, c):
        for block in self.blocks:
            x = block(x, c)
        return self.final(x, c)  # (B, T, D)
