"""Multi-layer perceptrons shared by every algorithm."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU, "gelu": nn.GELU}


def mlp(in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str = "relu") -> nn.Sequential:
    """Linear layers with ``activation`` between them and none after the output layer."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_dim, size), ACTIVATIONS[activation]()]
        in_dim = size
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a half precision (a network's output under bf16 or fp16
    autocast), else as it is (float64 stays float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
