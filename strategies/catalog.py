"""The registered strategies and their tunable keys (torch-free).

Builders live in the strategy modules and are imported only when a strategy
is built. Defaults of regularisation strengths cite where they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from clbench.config import param
from clbench.registry import register_strategy

BASELINES = "clbench.strategies.baselines"


@register_strategy("naive", builder=f"{BASELINES}:build_naive")
@dataclass(frozen=True)
class NaiveConfig:
    """Fine-tune on each experience in turn (lower bound; Avalanche Naive)."""


@register_strategy("cumulative", builder=f"{BASELINES}:build_cumulative")
@dataclass(frozen=True)
class CumulativeConfig:
    """Retrain on the union of all experiences seen so far (Avalanche Cumulative)."""


@register_strategy("joint", builder=f"{BASELINES}:build_joint", extra={"joint": True})
@dataclass(frozen=True)
class JointConfig:
    """One training on all experiences at once: the offline upper bound (one matrix row)."""


# Strengths tuned under each benchmark's default protocol, seed 0 (clbench's own sweeps, see
# results/reference/README.md): split MNIST task-IL on the full protocol; permuted MNIST on its first
# 3 experiences at 1000 iterations (EWC 1e3..1e7, SI 10..3000). Avalanche's EWC Fisher is the mean of
# squared *mini-batch* gradients and its SI clips importances at 1e-3, so neither takes the values of
# van de Ven & Tolias (1e5 and 10) as is.
@register_strategy("ewc", builder=f"{BASELINES}:build_ewc",
                   tuned={"split_mnist/task": {"ewc_lambda": 1e8}, "permuted_mnist": {"ewc_lambda": 1e4}})
@dataclass(frozen=True)
class EWCConfig:
    """Elastic weight consolidation (Kirkpatrick et al. 2017; Avalanche EWCPlugin)."""

    ewc_lambda: float = param(5000.0, "strength of the quadratic penalty", ge=0)
    ewc_mode: str = param("separate", "one penalty per experience, or an online running one",
                          choices=("separate", "online"))
    ewc_decay: float = param(1.0, "decay of the online Fisher estimate (ewc_mode=online)", ge=0, le=1)


@register_strategy("si", builder=f"{BASELINES}:build_si",
                   tuned={"split_mnist/task": {"si_lambda": 3000.0}, "permuted_mnist": {"si_lambda": 10.0}})
@dataclass(frozen=True)
class SIConfig:
    """Synaptic intelligence (Zenke et al. 2017; Avalanche's SI plugin, CPU snapshot bug fixed)."""

    si_lambda: float = param(1.0, "strength of the surrogate-loss penalty (Avalanche scales it internally)", ge=0)
    si_eps: float = param(1e-7, "damping of the importance denominator", gt=0)


@register_strategy("lwf", builder=f"{BASELINES}:build_lwf")
@dataclass(frozen=True)
class LwFConfig:
    """Learning without forgetting: distil the previous model's outputs (Li & Hoiem 2017)."""

    lwf_alpha: float = param(1.0, "weight of the distillation loss (lwf_weighting=alpha)", ge=0)
    temperature: float = param(2.0, "softmax temperature of the distillation", gt=0)
    distill_units: str = param("previous", "output units distilled: those of earlier experiences (Avalanche), or "
                                           "every unit seen, the current ones with target 0 (van de Ven & Tolias)",
                               choices=("previous", "seen"), since=2)
    lwf_weighting: str = param("alpha", "loss: CE + lwf_alpha * KD (Avalanche), or after t experiences "
                                        "CE / t + (1 - 1/t) * T^2 * KD (van de Ven & Tolias)",
                               choices=("alpha", "1/t"), since=2)


@register_strategy("replay", builder=f"{BASELINES}:build_replay")
@dataclass(frozen=True)
class ReplayConfig:
    """Experience replay from a fixed-size memory of past samples (Avalanche Replay)."""

    mem_size: int = param(500, "number of stored samples", ge=1)


@register_strategy("sparse_syn", builder="clbench.strategies.sparse_syn:build_sparse_syn",
                   protocol={"weight_decay": 1e-3},  # without L2 the topology inverts: untrained border weights never shrink
                   # the digits nets are tiny (64-100-100): 5% of them is too few connections to learn
                   tuned={"split_digits": {"density": 0.3, "max_density": 0.6},
                          "permuted_digits": {"density": 0.3, "max_density": 0.6}},
                   reference="SET (Mocanu et al. 2018), RigL (Evci et al. 2020); growth and consolidation per "
                             "experience as proposed by Numenta's sparse dynamic synapses project")
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
    max_density: float = param(0.2, "cap on each layer's density", gt=0, le=1)
    old_lr_scale: float = param(0.0, "step scale of consolidated synapses: 0 freezes them, 1 leaves them free",
                                ge=0, le=1)
    percent_on: float = param(1.0, "k-winners-take-all activations with this fraction of units on (kwinners' "
                                   "module); 1 = ReLU", gt=0, le=1)


@register_strategy("kwinners", builder="clbench.strategies.kwinners:build_kwinners",
                   reference="Ahmad & Scheinkman 2019 (How Can We Be So Dense?); nupic.torch semantics; "
                             "Iyer et al. 2022 for the permuted MNIST setting (results/reference/configs)")
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


@register_strategy("hebbian", builder="clbench.strategies.hebbian:build_hebbian",
                   reference="Miconi, Clune & Stanley 2018 (differentiable plasticity); DHP Softmax "
                             "(Thangarasa et al. 2020): plastic output layer written with the one-hot target")
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


@register_strategy("path_plastic", builder="clbench.strategies.path_plastic:build_path_plastic",
                   reference="PlasticNet (J. McCarroll): RigL-style pruning and regrowth of gated residual "
                             "paths; per-experience keeping and freezing of the best paths (PathNet-style)")
@dataclass(frozen=True)
class PathPlasticConfig:
    """Residual net whose gated paths are pruned, regrown and frozen per experience (PlasticNet for CL)."""

    widths: tuple[int, ...] = param((16, 32, 64, 128), "channels of each stage")
    stage_lengths: tuple[int, ...] = param((3, 3, 3, 3), "positions per stage (one width each)", ge=1)
    stem_stride: int = param(0, "stride of the stem's conv; 0 = by input size: 1 (8x8), 4 (28x28), 2 (32x32)",
                             ge=0)
    mode: str = param("any", "path span: adjacent positions only, or any span crossing <= 1 stage transition",
                      choices=("adjacent", "any"))
    max_paths: int = param(15, "number of live paths (PlasticNet: 15)", ge=0)
    rewire_every: int = param(500, "iterations between rewire events (PlasticNet: 500-1000); 0 = never", ge=0)
    prune: str = param("lowest", "which paths a rewire removes: lowest |gate|, smallest gradient, or every "
                                 "|gate| < threshold", choices=("lowest", "gradient", "threshold"))
    threshold: float = param(0.1, "gate threshold of prune=threshold", ge=0)
    rewire_last_epoch: bool = param(False, "also rewire in an experience's last epoch (PlasticNet: no)")
    register_new_params: bool = param(True, "new paths join the optimizer; false reproduces the original, "
                                             "where regrown paths never trained")
    keep_paths: int = param(2, "best free paths by |gate| frozen after each experience (0 = none)", ge=0)
    route_by_task: bool = param(False, "task-incremental only: a task runs the identity path, the paths kept for "
                                       "earlier tasks and its own, never a later task's (PathNet)", since=2)
    settle_fraction: float = param(0.25, "with route_by_task: the last fraction of an experience's iterations, in "
                                         "which only its kept paths train (the other free ones removed)", ge=0,
                                   le=1, since=2)
