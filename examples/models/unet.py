"""A U-Net-style decoder: the nested decoder of UNet++ (Zhou et al., 2018) over a 4-level
encoder, at a 128x128 input. Every node X(i, j) of the decoder upsamples X(i+1, j-1) with a
2x2, stride-2 transposed convolution (the original U-Net's "up-conv") and fuses it with the
nodes beside it: 10 transposed convolutions, of 4 distinct problems per channel width.
Import it with

    deconvbench import examples.models.unet:UNetPlusPlus --input 4x3x128x128 --name unet-decoder
"""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = (32, 64, 128, 256, 512)


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class UNetPlusPlus(nn.Module):
    """Encoder X(i, 0), i = 0..4; decoder X(i, j), i + j <= 4, j >= 1."""

    def __init__(self, channels: int = 3, classes: int = 2) -> None:
        super().__init__()
        w = WIDTHS
        self.pool = nn.MaxPool2d(2)
        inputs = (channels, *w[:-1])
        self.encoder = nn.ModuleList(block(inputs[i], w[i]) for i in range(5))
        self.up = nn.ModuleDict()
        self.fuse = nn.ModuleDict()
        for j in range(1, 5):
            for i in range(0, 5 - j):
                self.up[f"{i}{j}"] = nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2)
                self.fuse[f"{i}{j}"] = block(w[i] * (j + 1), w[i])
        self.head = nn.Conv2d(w[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(5):
            x = self.encoder[i](x if i == 0 else self.pool(x))
            nodes[i, 0] = x
        for j in range(1, 5):
            for i in range(0, 5 - j):
                up = self.up[f"{i}{j}"](nodes[i + 1, j - 1])
                beside = [nodes[i, k] for k in range(j)]
                nodes[i, j] = self.fuse[f"{i}{j}"](torch.cat([*beside, up], dim=1))
        return self.head(nodes[0, 4])  # type: ignore[no-any-return]
