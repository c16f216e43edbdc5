"""EWC with one penalty per experience at the cost of one: the merged quadratic.

Avalanche's `separate` mode sums Σ_t F_t ⊙ (θ − θ_t)² over every past
experience at every iteration and keeps two parameter-sized tensors per
experience. The sum is one quadratic: A ⊙ θ² − 2 B ⊙ θ + C with A = Σ_t F_t,
B = Σ_t F_t ⊙ θ_t and C = Σ_t F_t ⊙ θ_t², so `MergedEWCPlugin` keeps A and B
(and the scalar C) and adds the penalty's exact gradient 2λ(A ⊙ θ − B) to the
gradients after the backward pass — no autograd graph, constant time and
memory in the number of experiences. The importances F_t are Avalanche's
(its `EWCPlugin.compute_importances`, a pass over the experience's data).
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import EWCPlugin


class MergedEWCPlugin(EWCPlugin):
    """Avalanche's EWC (`separate` mode) with the per-experience penalties merged into one quadratic.

    `strategy.loss` includes λ times the penalty's value (for logging and the divergence guard); the
    gradient is added to each parameter's `.grad` in `after_backward`, before the optimizer step.
    """

    def __init__(self, ewc_lambda: float):
        super().__init__(ewc_lambda, mode="separate")
        self.curvature: dict[str, torch.Tensor] = {}  # A = Σ_t F_t
        self.anchor: dict[str, torch.Tensor] = {}  # B = Σ_t F_t ⊙ θ_t
        self.offset = 0.0  # C = Σ_t Σ F_t ⊙ θ_t²

    def before_backward(self, strategy, **kwargs):
        """Nothing: the penalty's gradient is added after the backward pass."""

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if not self.curvature:
            return
        value = torch.zeros((), dtype=torch.float64)
        for name, param in strategy.model.named_parameters():
            curvature = self.curvature.get(name)
            if curvature is None or not param.requires_grad:
                continue
            if curvature.shape != param.shape:
                raise ValueError(f"EWC: parameter '{name}' changed shape from {tuple(curvature.shape)} to "
                                 f"{tuple(param.shape)}; use Avalanche's EWCPlugin for models that grow")
            anchor = self.anchor[name]
            pull = torch.addcmul(-anchor, curvature, param)  # A ⊙ θ − B
            if param.grad is None:
                param.grad = pull.mul(2 * self.ewc_lambda)
            else:
                param.grad.add_(pull, alpha=2 * self.ewc_lambda)
            value += torch.dot(param.flatten(), (pull - anchor).flatten()).double()  # A θ² − 2 B θ
        strategy.loss = strategy.loss + self.ewc_lambda * (value + self.offset).to(strategy.loss.dtype)

    def after_training_exp(self, strategy, **kwargs):
        """Avalanche computes this experience's importances and parameters; they are merged at once."""
        super().after_training_exp(strategy, **kwargs)
        (fisher,), (params,) = self.importances.values(), self.saved_params.values()
        self._merge(fisher, params)
        self.importances.clear()
        self.saved_params.clear()

    @torch.no_grad()
    def _merge(self, fisher: dict, params: dict) -> None:
        for name, importance in fisher.items():
            F, theta = importance.data, params[name].data
            if name not in self.curvature:
                self.curvature[name], self.anchor[name] = torch.zeros_like(F), torch.zeros_like(F)
            self.curvature[name] += F
            self.anchor[name] += F * theta
            self.offset += float((F.double() * theta.double() ** 2).sum())

    def state_dict(self) -> dict:
        return {"curvature": dict(self.curvature), "anchor": dict(self.anchor), "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.curvature, self.anchor = dict(state["curvature"]), dict(state["anchor"])
        self.offset = state["offset"]
