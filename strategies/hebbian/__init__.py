"""hebbian: differentiable Hebbian plasticity (DHP Softmax), batched — config and registration."""

from dataclasses import dataclass

from clbench.config import param
from clbench.registry import lazy_exports, register_strategy


@register_strategy(
    "hebbian",
    reference="DHP Softmax (Thangarasa, Miconi & Taylor 2019/2020): a plastic output layer whose class columns "
              "are written with the mean activity of the class's samples; differentiable plasticity (Miconi, Clune "
              "& Stanley 2018)")
@dataclass(frozen=True)
class HebbianConfig:
    """Differentiable Hebbian plasticity: a plastic output layer whose trace keeps class associations (DHP)."""

    rule: str = param("dhp", "trace update: dhp (each class present in a batch writes its samples' mean activity "
                             "into its column; absent classes untouched), hebb (decays every column every batch) or "
                             "oja (leaves silent outputs untouched)", choices=("dhp", "hebb", "oja"))
    alpha: str = param("per_connection", "plasticity coefficient alpha: one per connection or one scalar",
                       choices=("per_connection", "scalar"))
    alpha_init: float = param(0.01, "scale of alpha's initial values (DHP: 0.01)")
    alpha_init_dist: str = param("uniform", "alpha's initial values: alpha_init * U(0, 1) (DHP) or alpha_init "
                                            "everywhere", choices=("uniform", "constant"))
    eta: float = param(0.01, "initial (learnable) trace update rate eta", ge=0, le=1)
    post: str = param("target", "post-synaptic activity written into the output trace in training: the one-hot "
                                "target (DHP) or the model's softmax output", choices=("target", "output"))
    reset_per_experience: bool = param(False, "forget the traces at the start of every experience")
    plastic_hidden: bool = param(False, "make the MLP's hidden layers plastic too (written with their activity)")
    ewc_lambda: float = param(0.0, "add Avalanche's EWC penalty (separate mode) with this strength: DHP+EWC; 0 = none",
                              ge=0, since=2)
    si_lambda: float = param(0.0, "add synaptic intelligence with this strength: DHP+SI; 0 = none", ge=0, since=2)


# public names, imported from .strategy on first use
__all__ = ["Hebbian", "HebbianPlugin"]
__getattr__ = lazy_exports(__name__, __all__)
