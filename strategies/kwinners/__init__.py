"""kwinners: k-winners-take-all with boosting, plus fixed sparse weights (Numenta) — config and registration."""

from dataclasses import dataclass

from clbench.config import param
from clbench.registry import lazy_exports, register_strategy


@register_strategy(
    "kwinners",
    reference="Ahmad & Scheinkman 2019 (How Can We Be So Dense?); nupic.torch semantics; Iyer et al. 2022 for "
              "the permuted MNIST setting (results/reference/configs)")
@dataclass(frozen=True)
class KWinnersConfig:
    """k-winners-take-all activations with boosting, plus fixed sparse weights (Numenta)."""

    percent_on: float = param(0.1, "fraction of hidden units that win (k = round(n * percent_on))", gt=0, le=1)
    percent_on_conv: float = param(0.25, "fraction of channels that win at each location (convolutional nets)",
                                   gt=0, le=1)
    sparsity: float = param(0.5, "fraction of zero weights per hidden unit (fixed random mask)", ge=0, lt=1)
    sparsity_conv: float = param(0.5, "fraction of zero weights per output channel of a convolution", ge=0, lt=1)
    k_inference_factor: float = param(1.5, "k at evaluation is int(k * k_inference_factor)", ge=1)
    boost_strength: float = param(1.0, "initial boost strength beta (winners chosen on x * exp(-beta * duty))",
                                  ge=0)
    boost_strength_factor: float = param(0.9, "beta is multiplied by this once per epoch", ge=0, le=1)
    duty_cycle_period: int = param(1000, "samples over which duty cycles are averaged", ge=1)
    sparsity_head: float = param(0.0, "fraction of zero weights per output unit of the head (fixed random mask)",
                                 ge=0, lt=1, since=2)
    weight_init: str = param("pytorch", "pytorch: U(+-1/sqrt(fan_in)); density (MLP only): "
                                        "U(+-1/sqrt(input density * weight density * fan_in)), Numenta's MLP",
                             choices=("pytorch", "density"), since=2)


# public names, imported from .strategy on first use
__all__ = ["SparseKWinners", "KWinnersPlugin"]
__getattr__ = lazy_exports(__name__, __all__)
