"""hebbian: differentiable Hebbian plasticity (DHP Softmax), batched — config and registration."""

from dataclasses import dataclass

from clbench.config import param
from clbench.registry import lazy_exports, register_strategy


@register_strategy(
    "hebbian",
    reference="Miconi, Clune & Stanley 2018 (differentiable plasticity); DHP Softmax (Thangarasa et al. 2020): "
              "plastic output layer written with the one-hot target")
@dataclass(frozen=True)
class HebbianConfig:
    """Differentiable Hebbian plasticity: a plastic output layer whose trace keeps class associations (DHP)."""

    rule: str = param("hebb", "trace update: hebb (decays every trace) or oja (leaves silent outputs untouched)",
                      choices=("hebb", "oja"))
    alpha: str = param("per_connection", "plasticity coefficient alpha: one per connection or one scalar",
                       choices=("per_connection", "scalar"))
    alpha_init: float = param(1.0, "initial value of alpha (1.0: best of 0.1 and 1.0 on permuted_digits)")
    eta: float = param(0.01, "initial (learnable) trace update rate eta", ge=0, le=1)
    post: str = param("target", "post-synaptic activity written into the output trace in training: the one-hot "
                                "target (DHP) or the model's softmax output", choices=("target", "output"))
    reset_per_experience: bool = param(False, "forget the traces at the start of every experience")
    plastic_hidden: bool = param(False, "make the MLP's hidden layers plastic too (written with their activity)")


# public names, imported from .strategy on first use
__all__ = ["Hebbian", "HebbianPlugin"]
__getattr__ = lazy_exports(__name__, __all__)
