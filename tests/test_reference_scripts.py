"""The stand-alone checks under results/reference/scripts/."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "results" / "reference" / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lwf_plain():
    return load_script("lwf_plain_pytorch")


def test_plain_distillation_is_clbench_seen_units_loss_times_t_squared(lwf_plain):
    from clbench.strategies.baselines import seen_units_distillation

    out, prev = torch.tensor([[2.0, 0.0, 4.0, -1.0]]), torch.tensor([[1.0, 3.0]])
    temperature = 2.0
    plain = lwf_plain.distillation(out, prev, temperature, pad=True)
    kl = seen_units_distillation(out, prev, [0, 1], [2, 3], temperature)
    q = torch.softmax(prev / temperature, dim=1)[0]
    entropy = -float((q * q.log()).sum())  # cross-entropy = KL + the target's entropy, a constant
    assert float(plain) == pytest.approx(temperature ** 2 * (float(kl) + entropy))


def test_plain_distillation_without_padding_ignores_the_new_units(lwf_plain):
    out, prev = torch.tensor([[0.0, 0.0, 9.0]]), torch.tensor([[0.0, 0.0]])
    # target and current softmax both [1/2, 1/2] over the two earlier units: T² · log 2
    assert float(lwf_plain.distillation(out, prev, 2.0, pad=False)) == pytest.approx(4 * math.log(2))


def test_plain_lwf_runs_on_mnist_files(lwf_plain, mnist_root):
    args = ["--data-root", str(mnist_root), "--iterations", "3", "--seed", "1"]
    matrix = lwf_plain.main(args)
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert matrix[0][2:] == [0.0, 0.0, 0.0]  # after the first pair only its two units exist
    assert matrix == lwf_plain.main(args)


def test_plain_lwf_without_data_is_a_usage_error(lwf_plain, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        lwf_plain.main(["--data-root", str(tmp_path)])
    assert exc.value.code == 2
    assert "MNIST" in capsys.readouterr().err


def test_at_the_loss_optimum_a_new_class_at_best_ties_with_the_old_ones(lwf_plain):
    # t = 2: an undecided previous model leaves the new class tied with both old ones (1/3 each) ...
    assert lwf_plain.optimum_margin(torch.tensor([0.0, 0.0]), t=2) == pytest.approx(0.0, abs=1e-3)
    # ... a confident one keeps it well under the old class it favours (about 1/4 against 3/4)
    assert lwf_plain.optimum_margin(torch.tensor([8.0, 0.0]), t=2) < -0.4


def test_check_optimum_prints_the_count(lwf_plain, capsys):
    margins = lwf_plain.main(["--check-optimum", "2"])[0]
    assert len(margins) == 8
    assert "of 8" in capsys.readouterr().out
