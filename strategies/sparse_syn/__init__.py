"""sparse_syn: sparse dynamic synapses (SET/RigL) grown per experience, old ones kept — config, registration,
and its plot kind (see strategies/README.md for the layout of a method package)."""

from dataclasses import dataclass

from clbench.config import param
from clbench.plots import register_plot
from clbench.registry import lazy_exports, register_strategy

register_plot("topology", "sparse_syn: connections per input pixel of the first layer, and their centred-square "
              "profile", needs_extra="topology", draw=f"{__name__}.figures:plot_topology")


@register_strategy(
    "sparse_syn",
    # without L2 the topology inverts: untrained border weights never shrink
    protocol={"weight_decay": 1e-3},
    # the digits nets are tiny (64-100-100): 5% of them is too few connections to learn
    tuned={"split_digits": {"density": 0.3, "max_density": 0.6},
           "permuted_digits": {"density": 0.3, "max_density": 0.6}},
    reference="SET (Mocanu et al. 2018), RigL (Evci et al. 2020); growth and consolidation per experience as "
              "proposed by Numenta's sparse dynamic synapses project")
@dataclass(frozen=True)
class SparseSynConfig:
    """Sparse dynamic synapses: SET/RigL prune-and-regrow, new synapses per experience, old ones kept."""

    density: float = param(0.05, "initial connection density of the hidden layers", gt=0, le=1)
    epsilon: float = param(0.0, "Erdos-Renyi epsilon for the initial density (SET: 20); 0 = use density", ge=0)
    zeta: float = param(0.3, "fraction of positive and of negative free weights pruned per topology step",
                        ge=0, le=1)
    evolve_every: int = param(0, "iterations between topology steps; 0 = after every epoch", ge=0)
    regrow: str = param("random", "where pruned connections regrow: random (SET) or largest gradient (RigL)",
                        choices=("random", "gradient"))
    regrow_init: str = param("zero", "initial weight of a new connection: zero (SET Keras), he (synapses), "
                                     "normal = N(0,1)/10 (SET SciPy)", choices=("zero", "he", "normal"))
    grow: float = param(0.02, "new connections per experience after the first, as a fraction of a layer's "
                              "positions", ge=0, le=1)
    max_density: float = param(0.0, "cap on each layer's density; 0 = none (each experience gets its growth); a "
                                    "cap too low for every experience of the stream is refused", ge=0, le=1)
    old_lr_scale: float = param(0.0, "step scale of consolidated synapses: 0 freezes them, 1 leaves them free",
                                ge=0, le=1)
    grow_into: str = param("any", "units new connections of an experience go to: any, or free = units without "
                                  "consolidated synapses while there are such units", choices=("any", "free"),
                           since=2)
    percent_on: float = param(1.0, "k-winners-take-all activations with this fraction of units on (kwinners' "
                                   "module); 1 = ReLU", gt=0, le=1)


# public names, imported from .strategy on first use
__all__ = ["SparseSynapses", "SparseSynapsesPlugin"]
__getattr__ = lazy_exports(__name__, __all__)
