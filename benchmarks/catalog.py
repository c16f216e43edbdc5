"""The registered benchmarks: configs, default scenarios and published protocols.

Torch-free: builders are imported only when a benchmark is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from clbench.config import param
from clbench.errors import UsageError
from clbench.registry import register_benchmark

BUILDERS = "clbench.benchmarks.builders"

# van de Ven & Tolias 2019, "Three scenarios for continual learning" (arXiv:1904.07734), Table 2 setup.
SPLIT_MNIST_PROTOCOL = dict(hidden=(400, 400), optimizer="adam", lr=1e-3, batch_size=128, iterations=2000)
PERMUTED_MNIST_PROTOCOL = dict(hidden=(1000, 1000), optimizer="adam", lr=1e-4, batch_size=128, iterations=5000,
                               normalize=False, pad=2)  # the paper's pixels: [0, 1], zero-padded to 32x32
VAN_DE_VEN = "van de Ven & Tolias 2019 (Three scenarios for continual learning)"
# Single-pass protocol of Lopez-Paz & Ranzato 2017 (GEM) / Chaudhry et al. 2019 (A-GEM, ER):
# reduced ResNet-18 (nf=20), SGD lr 0.03, batch 10, one epoch per experience.
CIFAR_PROTOCOL = dict(backbone="resnet18_reduced", optimizer="sgd", lr=0.03, batch_size=10, epochs=1,
                      eval_batch_size=500)
# Offline demo: small MLP, Adam, a few seconds per run.
DIGITS_PROTOCOL = dict(hidden=(100, 100), optimizer="adam", lr=1e-3, batch_size=32, epochs=10)


NORMALIZE_HELP = "standardise pixels by the data set's mean and std; false keeps them in [0, 1]"


@dataclass(frozen=True)
class SplitConfig:
    """Classes split into equal groups, one group per experience."""

    N_CLASSES: ClassVar[int] = 10
    n_experiences: int = param(5, "number of experiences; must divide the number of classes", ge=1)
    shuffle_classes: bool = param(False, "draw the class order from the seed instead of 0/1, 2/3, ...")
    normalize: bool = param(True, NORMALIZE_HELP, since=2)

    def __post_init__(self):
        if self.N_CLASSES % self.n_experiences:
            valid = [n for n in range(1, self.N_CLASSES + 1) if self.N_CLASSES % n == 0]
            raise UsageError(
                f"bad value for 'n_experiences': received {self.n_experiences}, expected a divisor "
                f"of the {self.N_CLASSES} classes: {', '.join(map(str, valid))}."
            )


@dataclass(frozen=True)
class PermutedConfig:
    """Every experience holds all classes under its own fixed pixel permutation."""

    n_experiences: int = param(10, "number of permutations (experiences)", ge=1, le=1000)
    identity_first: bool = param(True, "experience 0 sees the original, unpermuted images")
    normalize: bool = param(True, NORMALIZE_HELP, since=2)
    pad: int = param(0, "zero pixels added on every side of the images before they are permuted (van de Ven's "
                        "permuted MNIST: 2, i.e. 32x32)", ge=0, le=64, since=2)


@register_benchmark("split_mnist", builder=f"{BUILDERS}:split_mnist", scenarios=("class", "task"),
                    protocol=SPLIT_MNIST_PROTOCOL, reference=VAN_DE_VEN)
@dataclass(frozen=True)
class SplitMNIST(SplitConfig):
    """MNIST in 5 experiences of 2 digits (0/1, 2/3, ...)."""


@register_benchmark("permuted_mnist", builder=f"{BUILDERS}:permuted_mnist", scenarios=("domain", "task"),
                    protocol=PERMUTED_MNIST_PROTOCOL, reference=VAN_DE_VEN)
@dataclass(frozen=True)
class PermutedMNIST(PermutedConfig):
    """MNIST under 10 pixel permutations, one per experience (up to 1000)."""


@register_benchmark("split_fmnist", builder=f"{BUILDERS}:split_fmnist", scenarios=("class", "task"),
                    protocol=SPLIT_MNIST_PROTOCOL, reference=f"as split_mnist ({VAN_DE_VEN})")
@dataclass(frozen=True)
class SplitFashionMNIST(SplitConfig):
    """Fashion-MNIST in 5 experiences of 2 classes."""


@register_benchmark("split_cifar10", builder=f"{BUILDERS}:split_cifar10", scenarios=("class", "task"),
                    protocol=CIFAR_PROTOCOL,
                    reference="reduced ResNet-18 single pass: Lopez-Paz & Ranzato 2017; Chaudhry et al. 2019")
@dataclass(frozen=True)
class SplitCIFAR10(SplitConfig):
    """CIFAR-10 in 5 experiences of 2 classes, reduced ResNet-18."""


@register_benchmark("split_digits", builder=f"{BUILDERS}:split_digits", scenarios=("class", "task"),
                    protocol=DIGITS_PROTOCOL, reference="offline demo on scikit-learn's 8x8 digits")
@dataclass(frozen=True)
class SplitDigits(SplitConfig):
    """scikit-learn's 8x8 digits in 5 experiences of 2 digits (offline, seconds)."""


@register_benchmark("permuted_digits", builder=f"{BUILDERS}:permuted_digits", scenarios=("domain", "task"),
                    protocol=DIGITS_PROTOCOL, reference="offline demo on scikit-learn's 8x8 digits")
@dataclass(frozen=True)
class PermutedDigits(PermutedConfig):
    """scikit-learn's 8x8 digits under 5 pixel permutations (offline, seconds)."""

    n_experiences: int = param(5, "number of permutations (experiences)", ge=1, le=1000)
