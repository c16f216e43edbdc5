"""Experience replay whose memory fits a checkpoint: Avalanche's default buffer, with its state in the open.

`ExperienceReservoirBuffer` selects exactly what Avalanche's
`ExperienceBalancedBuffer` (adaptive size) selects — per experience a
reservoir sample (a uniform random weight per sample, the largest kept), the
memory split evenly over the experiences seen — and keeps it as indices into
each experience's dataset, so a checkpoint holds the memory as plain data.
"""

from __future__ import annotations

import torch
from avalanche.benchmarks.utils import concat_datasets
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ExemplarsBuffer


def group_sizes(max_size: int, groups: int) -> list[int]:
    """The memory split evenly over `groups`, the remainder to the first ones (Avalanche's adaptive split)."""
    sizes = [max_size // groups] * groups
    for i in range(max_size - sum(sizes)):
        sizes[i] += 1
    return sizes


class ExperienceReservoirBuffer(ExemplarsBuffer):
    """A replay memory balanced over experiences, each one's part a reservoir sample of it."""

    def __init__(self, max_size: int):
        super().__init__(max_size)
        self.kept: list[torch.Tensor] = []  # per experience: indices into its dataset, largest weight first
        self.datasets: list = []  # per experience: its dataset

    def post_adapt(self, agent, exp):
        weights = torch.rand(len(exp.dataset))
        self.kept.append(weights.sort(descending=True).indices)
        self.datasets.append(exp.dataset)
        self.resize(agent, self.max_size)

    def resize(self, strategy, new_size: int):
        self.max_size = new_size
        if self.kept:
            self.kept = [kept[:size] for kept, size in zip(self.kept, group_sizes(new_size, len(self.kept)))]

    @property
    def buffer(self):
        return concat_datasets([data.subset(kept) for data, kept in zip(self.datasets, self.kept)])

    @buffer.setter
    def buffer(self, new_buffer):
        raise AttributeError("the memory is set through post_adapt (or a checkpoint), not assigned")


class ResumableReplayPlugin(ReplayPlugin):
    """Avalanche's `ReplayPlugin` with `ExperienceReservoirBuffer`, and the checkpoint protocol.

    A loaded state names its samples by experience and index; the experiences' datasets are taken
    from the stream when training resumes.
    """

    def __init__(self, mem_size: int = 200, **kwargs):
        super().__init__(mem_size=mem_size, storage_policy=ExperienceReservoirBuffer(mem_size), **kwargs)

    def before_training_exp(self, strategy, **kwargs):
        memory = self.storage_policy
        if len(memory.datasets) < len(memory.kept):  # resumed: the datasets of the experiences in memory
            stream = strategy.experience.origin_stream
            memory.datasets = [stream[i].dataset for i in range(len(memory.kept))]
        super().before_training_exp(strategy, **kwargs)

    def state_dict(self) -> dict:
        return {"max_size": self.storage_policy.max_size, "kept": list(self.storage_policy.kept)}

    def load_state_dict(self, state: dict) -> None:
        self.storage_policy.max_size, self.storage_policy.kept = state["max_size"], list(state["kept"])
        self.storage_policy.datasets = []
