"""The checkpoint protocol of plugins: `state_dict() -> dict` and `load_state_dict(state)`.

A state holds tensors and plain data only (dicts, lists, numbers, strings), so a
checkpoint loads with `torch.load(..., weights_only=True)`. `AttributeState`
serves plugins whose state is a few attributes: list them in `state_keys`.
"""

from __future__ import annotations

from typing import Any


class AttributeState:
    """`state_dict` / `load_state_dict` over the attributes named in `state_keys`."""

    state_keys: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.state_keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.state_keys:
            setattr(self, key, state[key])
