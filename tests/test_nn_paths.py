"""Path-plastic trunk: shapes, stage transitions, candidate paths, prune and grow choices."""

import random

import pytest
import torch

from clbench.nn.paths import (
    PathPlasticTrunk,
    candidate_paths,
    paths_to_grow,
    paths_to_prune,
    routed_to,
    stage_of_positions,
)


@pytest.mark.parametrize("mode", ["adjacent", "any"])
@pytest.mark.parametrize("shape, stem_stride", [((1, 8, 8), 1), ((1, 28, 28), 4), ((3, 32, 32), 2)])
def test_forward_shapes_in_every_mode(mode, shape, stem_stride):
    trunk = PathPlasticTrunk(shape[0], widths=(4, 8, 8, 16), stage_lengths=(2, 2, 2, 2), mode=mode, max_paths=5,
                             stem_stride=stem_stride)
    assert trunk(torch.randn(3, *shape)).shape == (3, 16)
    assert len(trunk.paths) == 5


def test_a_path_across_a_transition_is_strided_and_changes_width():
    trunk = PathPlasticTrunk(1, widths=(4, 8), stage_lengths=(2, 2), max_paths=0)
    inside, across = trunk.add_path((0, 1)), trunk.add_path((1, 2))
    conv3_inside, conv3_across = inside.branch[3], across.branch[3]
    assert conv3_inside.stride == (1, 1) and conv3_across.stride == (2, 2)
    assert across.branch[0].in_channels == 4 and across.branch[6].out_channels == 8
    assert trunk(torch.randn(2, 1, 8, 8)).shape == (2, 8)


def test_stage_positions_and_candidates_never_cross_two_transitions():
    stages = stage_of_positions((2, 2, 2))
    assert stages == [0, 0, 1, 1, 2, 2]
    spans = candidate_paths(stages, "any")
    assert (1, 2) in spans and (0, 3) in spans and (2, 5) in spans
    assert not any(stages[b] - stages[a] > 1 for a, b in spans)
    assert (0, 4) not in spans and (1, 4) not in spans
    assert candidate_paths(stages, "adjacent") == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_growing_everything_never_adds_a_two_transition_path():
    trunk = PathPlasticTrunk(1, widths=(4, 4, 4), stage_lengths=(2, 2, 2), mode="any", max_paths=100)
    assert sorted(trunk.path_list) == sorted(candidate_paths(trunk.stages, "any"))
    with pytest.raises(ValueError, match="not allowed"):
        trunk.add_path((0, 4))


def test_adjacent_mode_gives_each_output_at_most_one_path():
    chosen = paths_to_grow(candidate_paths([0, 0, 0, 0], "adjacent"), [(1, 2)], 10, "adjacent", random.Random(0))
    assert sorted(chosen) == [(0, 1), (2, 3)]


GATES = {(0, 1): 0.5, (1, 2): -0.05, (2, 3): 0.3}


@pytest.mark.parametrize("criterion, grads, expected", [
    ("lowest", {}, [(1, 2)]),
    ("gradient", {(0, 1): 3.0, (1, 2): 5.0, (2, 3): 1.0}, [(2, 3)]),
    ("threshold", {}, [(1, 2), (2, 3)]),
])
def test_prune_criteria_choose_the_predicted_path(criterion, grads, expected):
    assert paths_to_prune(GATES, grads, criterion, threshold=0.35) == expected


def test_gate_is_a_scalar_in_zero_one_and_scales_the_branch():
    trunk = PathPlasticTrunk(1, widths=(4,), stage_lengths=(2,), max_paths=0)
    path = trunk.add_path((0, 1))
    assert path.gate.shape == () and 0 <= path.gate.item() <= 1
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        path.gate.fill_(0.0)
        assert torch.equal(path(x), torch.zeros(2, 4, 5, 5))


def test_a_routed_path_runs_for_tasks_from_the_one_it_is_kept_for_or_while_free_from_the_current_one():
    trunk = PathPlasticTrunk(1, widths=(4,), stage_lengths=(2,), max_paths=0)
    path = trunk.add_path((0, 1))
    labels = torch.tensor([0, 1, 2, 3])
    assert routed_to(path, labels, current_task=2).tolist() == [False, False, True, True]  # free
    path.freeze(task=1)
    assert routed_to(path, labels, current_task=3).tolist() == [False, True, True, True]  # kept for task 1


def test_routing_hides_later_paths_from_old_tasks_sample_by_sample():
    torch.manual_seed(0)
    trunk = PathPlasticTrunk(1, widths=(4, 8), stage_lengths=(2, 2), mode="any", max_paths=0).eval()
    trunk.add_path((0, 1)).freeze(task=0)
    x = torch.randn(3, 1, 6, 6)
    with torch.no_grad():
        only_task0_paths = trunk(x)
        trunk.add_path((1, 3))  # free, trained for task 2
        trunk.route_by_task, trunk.current_task = True, 2
        routed = trunk(x, torch.tensor([0, 1, 2]))
        unrouted = trunk(x)
    assert torch.allclose(routed[:2], only_task0_paths[:2])
    assert torch.allclose(routed[2], unrouted[2]) and not torch.allclose(routed[2], only_task0_paths[2])
    assert torch.equal(trunk(x, None), unrouted)  # no task labels at test: every path runs
    with pytest.raises(ValueError, match="route_by_task needs the task labels in training"):
        trunk.train()(x)
