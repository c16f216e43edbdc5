"""LwF on class-incremental split MNIST in plain PyTorch, as van de Ven & Tolias (2019) train it.

An independent check of clbench's `lwf` with `configs/lwf_split_mnist_vandeven_loss.toml`: no
Avalanche, no clbench strategy code (only clbench's reader of the official MNIST files). The
protocol and the loss follow the paper and its code path `--replay=current --distill`:

- MLP 784-400-400-10 (ReLU), PyTorch's initialisation; pixels in [0, 1], 28x28, not standardised;
- Adam (0.9, 0.999), lr 1e-3, created once (its state carries over between experiences);
  batch 128, 2000 iterations per experience, a new shuffle at each pass over the experience;
- output layer: the units of the classes seen so far, in training and at test;
- loss after t experiences: (1/t)·CE + (1 − 1/t)·T²·KD with T = 2, where KD is the cross-entropy
  from the previous model's softmax over the earlier classes, padded with zeros for the current
  ones, to the current model's softmax over all classes seen so far (`--distill-units previous`:
  over the earlier classes only, no zeros).

Prints the accuracy matrix (row i: after experience i; column j: test set of experience j) and
the average accuracy after the last experience. `--check-optimum N` instead minimises the loss of
one example of a new class over free logits, for N random outputs of the previous model, and prints
how often the new class ends above every earlier one at that optimum.

    python results/reference/scripts/lwf_plain_pytorch.py --data-root DATA_ROOT --seed 0
    python results/reference/scripts/lwf_plain_pytorch.py --check-optimum 200
"""
from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clbench.benchmarks.sources import MNIST, load_idx_set
from clbench.errors import DataError

BATCH_SIZE, LEARNING_RATE, TEMPERATURE, HIDDEN = 128, 1e-3, 2.0, 400


def distillation(out: torch.Tensor, prev_out: torch.Tensor, temperature: float, pad: bool) -> torch.Tensor:
    """T²-scaled cross-entropy from the previous softmax to the current one (`pad`: zeros for new units)."""
    target = F.softmax(prev_out / temperature, dim=1)
    if pad:
        target = torch.cat([target, target.new_zeros(len(target), out.shape[1] - target.shape[1])], dim=1)
    else:
        out = out[:, :prev_out.shape[1]]
    log_p = F.log_softmax(out / temperature, dim=1)
    return -(target * log_p).sum(dim=1).mean() * temperature ** 2


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, 10))


def batches(n: int, iterations: int, generator: torch.Generator):
    """Index batches for `iterations` steps, reshuffled at every pass over the `n` examples."""
    order, start = torch.randperm(n, generator=generator), 0
    for _ in range(iterations):
        if start >= n:
            order, start = torch.randperm(n, generator=generator), 0
        yield order[start:start + BATCH_SIZE]
        start += BATCH_SIZE


def accuracy_row(model: nn.Module, x: torch.Tensor, y: torch.Tensor, pairs, n_seen: int) -> list[float]:
    with torch.no_grad():
        predicted = model(x)[:, :n_seen].argmax(dim=1)
    return [float((predicted[mask] == y[mask]).float().mean())
            for mask in ((y == a) | (y == b) for a, b in pairs)]


def train_lwf(data, seed: int, iterations: int, pad: bool) -> list[list[float]]:
    """The accuracy matrix of LwF over the five pairs (0, 1), (2, 3), ... of the labels in `data`."""
    x_train, y_train, x_test, y_test = data
    pairs = [(2 * i, 2 * i + 1) for i in range(5)]
    model = mlp(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(0.9, 0.999))
    generator = torch.Generator().manual_seed(seed)
    previous, matrix = None, []
    for t, (a, b) in enumerate(pairs, start=1):
        mask = (y_train == a) | (y_train == b)
        x, y, n_seen = x_train[mask], y_train[mask], 2 * t
        model.train()
        for index in batches(len(x), iterations, generator):
            out = model(x[index])[:, :n_seen]
            loss = F.cross_entropy(out, y[index])
            if previous is not None:
                with torch.no_grad():
                    prev_out = previous(x[index])[:, :n_seen - 2]
                loss = loss / t + (1 - 1 / t) * distillation(out, prev_out, TEMPERATURE, pad)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        previous = copy.deepcopy(model).eval()
        model.eval()
        matrix.append(accuracy_row(model, x_test, y_test, pairs, n_seen))
    return matrix


def optimum_margin(prev_logits: torch.Tensor, t: int) -> float:
    """p(new class) − max p(earlier class) at the minimum of one example's loss over free logits.

    The example belongs to the first of the two new units; `prev_logits` are the previous model's
    logits over the 2(t − 1) earlier units.
    """
    n_old = len(prev_logits)
    logits = torch.zeros(n_old + 2, requires_grad=True)
    optimizer = torch.optim.LBFGS([logits], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        out = logits[None]
        loss = F.cross_entropy(out, torch.tensor([n_old])) / t + (1 - 1 / t) * distillation(
            out, prev_logits[None], TEMPERATURE, pad=True)
        loss.backward()
        return loss

    optimizer.step(closure)
    p = F.softmax(logits.detach(), dim=0)
    return float(p[n_old] - p[:n_old].max())


def check_optimum(n: int, seed: int) -> list[float]:
    """Margins of `optimum_margin` for n random previous outputs at each t = 2..5 (confidence varied)."""
    generator = torch.Generator().manual_seed(seed)
    margins = []
    for t in range(2, 6):
        for _ in range(n):
            scale = 6 * torch.rand(1, generator=generator)
            margins.append(optimum_margin(scale * torch.randn(2 * (t - 1), generator=generator), t))
    return margins


def load_mnist(root: str, class_order: np.ndarray):
    """Flat images in [0, 1] and labels mapped through `class_order` (label y becomes class_order[y])."""
    x_train, y_train, x_test, y_test = load_idx_set(MNIST, Path(root), "split_mnist", allow_download=False)
    order = torch.as_tensor(class_order)
    images = [torch.tensor(x.reshape(len(x), -1), dtype=torch.float32) / 255 for x in (x_train, x_test)]
    labels = [order[torch.from_numpy(y)] for y in (y_train, y_test)]
    return images[0], labels[0], images[1], labels[1]


def main(argv: list[str] | None = None) -> list[list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("CLBENCH_DATA_ROOT"),
                        help="folder holding MNIST/raw/ (default: $CLBENCH_DATA_ROOT)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=2000, help="per experience (default: 2000)")
    parser.add_argument("--class-order", choices=["digits", "random"], default="digits",
                        help="digits: pairs 0/1, 2/3, ...; random: a permutation of the labels drawn from the seed")
    parser.add_argument("--distill-units", choices=["seen", "previous"], default="seen")
    parser.add_argument("--check-optimum", type=int, default=0, metavar="N",
                        help="check the loss's per-example optimum on N random previous outputs per t; no training")
    args = parser.parse_args(argv)
    if args.check_optimum:
        margins = check_optimum(args.check_optimum, args.seed)
        wins = sum(m > 1e-3 for m in margins)
        print(f"new class above every earlier one at the optimum: {wins} of {len(margins)}; "
              f"largest margin {max(margins):+.4f}, smallest {min(margins):+.4f}")
        return [margins]
    if not args.data_root:
        parser.error("no data root: pass --data-root or set CLBENCH_DATA_ROOT to a folder holding MNIST/raw/")
    torch.set_num_threads(1)  # one thread: the same float sums, so the same matrix, on every run
    order = np.random.RandomState(args.seed).permutation(10) if args.class_order == "random" else np.arange(10)
    try:
        data = load_mnist(args.data_root, order)
    except DataError as exc:
        parser.error(str(exc))
    matrix = train_lwf(data, args.seed, args.iterations, args.distill_units == "seen")
    for row in matrix:
        print(" ".join(f"{v:.4f}" for v in row))
    print(f"ACC {np.mean(matrix[-1]):.4f}")
    return matrix


if __name__ == "__main__":
    main()
