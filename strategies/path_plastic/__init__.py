"""path_plastic: gated residual paths pruned, regrown and frozen per experience — config and registration."""

from dataclasses import dataclass

from clbench.config import param
from clbench.registry import lazy_exports, register_strategy


@register_strategy(
    "path_plastic",
    reference="PlasticNet (J. McCarroll): RigL-style pruning and regrowth of gated residual paths; "
              "per-experience keeping and freezing of the best paths (PathNet-style)")
@dataclass(frozen=True)
class PathPlasticConfig:
    """Residual net whose gated paths are pruned, regrown and frozen per experience (PlasticNet for CL)."""

    widths: tuple[int, ...] = param((16, 32, 64, 128), "channels of each stage")
    stage_lengths: tuple[int, ...] = param((3, 3, 3, 3), "positions per stage (one width each)", ge=1)
    stem_stride: int = param(0, "stride of the stem's conv; 0 = by input size: 1 (8x8), 4 (28x28), 2 (32x32)",
                             ge=0)
    mode: str = param("adjacent", "path span: adjacent positions only (PlasticNet), or any span crossing <= 1 "
                                  "stage transition", choices=("adjacent", "any"))
    max_paths: int = param(15, "number of live paths (PlasticNet: 15)", ge=0)
    rewire_every: int = param(500, "iterations between rewire events (PlasticNet: 500-1000); 0 = never", ge=0)
    prune: str = param("signed", "which paths a rewire removes: the lowest signed gate (PlasticNet), lowest "
                                 "|gate|, smallest gradient, or every |gate| < threshold",
                       choices=("signed", "lowest", "gradient", "threshold"))
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


# public names, imported from .strategy on first use
__all__ = ["PathPlastic", "PathPlasticPlugin"]
__getattr__ = lazy_exports(__name__, __all__)
