"""Reduced ResNet-18 (Lopez-Paz & Ranzato 2017): BasicBlocks [2, 2, 2, 2], width nf=20."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from clbench.nn.networks import relu


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a (projected) identity shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, conv: Callable[..., nn.Module] = nn.Conv2d,
                 act: Callable[[int], nn.Module] = relu):
        super().__init__()
        self.act1, self.act2 = act(planes), act(planes)
        self.conv1 = conv(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(conv(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


def reduced_resnet18_features(in_channels: int, nf: int = 20,
                              conv: Callable[..., nn.Module] = nn.Conv2d,
                              act: Callable[[int], nn.Module] = relu) -> tuple[nn.Sequential, int]:
    """The feature extractor and its output width (8 * nf); `conv` builds every convolution, `act(channels)`
    every activation."""
    layers: list[nn.Module] = [conv(in_channels, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), act(nf)]
    in_planes = nf
    for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
        for block_stride in (stride, 1):
            layers.append(BasicBlock(in_planes, nf * mult, block_stride, conv, act))
            in_planes = nf * mult
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), in_planes
