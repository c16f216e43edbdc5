"""PlasticLinear: Hebb and Oja by hand, batching semantics, the one-sample reference, pattern completion."""

import copy
import time

import pytest
import torch
from torch import Tensor, nn

from clbench.nn.hebbian import ACTIVATIONS, PlasticLinear, outer_terms, plastic_update


def one_sample_trajectory(layer: PlasticLinear, xs: Tensor, posts: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Reference path: feed `xs` one sample at a time with element-wise updates.

    Shared mode: each sample's output uses H after the previous samples' writes (post:
    `posts[t]` or the output). Per-sample mode: one episode of len(xs) steps. Returns
    (outputs [T, out], final H [in, out]).
    """
    f = ACTIVATIONS[layer.activation]
    eta = float(layer.rate().detach())
    weight, alpha, bias = layer.weight.detach(), layer.alpha.detach().expand_as(layer.weight), layer.bias.detach()
    trace = torch.zeros(layer.in_features, layer.out_features)
    outputs = []
    for t, x in enumerate(xs):
        y = torch.zeros(layer.out_features)
        for j in range(layer.out_features):
            y[j] = sum(x[i] * (weight[i, j] + alpha[i, j] * trace[i, j]) for i in range(layer.in_features)) + bias[j]
        y = f(y)
        outputs.append(y)
        post = y if posts is None else posts[t]
        for i in range(layer.in_features):
            for j in range(layer.out_features):
                if layer.rule == "hebb":
                    trace[i, j] = (1 - eta) * trace[i, j] + eta * x[i] * post[j]
                else:
                    trace[i, j] = trace[i, j] + eta * post[j] * (x[i] - post[j] * trace[i, j])
    return torch.stack(outputs), trace



def one_update(rule, trace, x, post, eta):
    outer, post_sq = outer_terms(torch.tensor([x]), torch.tensor([post]), per_sample=False)
    return plastic_update(rule, trace, outer, post_sq, eta)


def test_hebb_by_hand_on_a_2x3_layer():
    trace = one_update("hebb", torch.zeros(2, 3), [1.0, 2.0], [1.0, 0.0, 2.0], 0.5)
    assert torch.equal(trace, torch.tensor([[0.5, 0.0, 1.0], [1.0, 0.0, 2.0]]))
    trace = one_update("hebb", trace, [0.0, 1.0], [1.0, 1.0, 0.0], 0.5)
    assert torch.equal(trace, torch.tensor([[0.25, 0.0, 0.5], [1.0, 0.5, 1.0]]))


def test_oja_by_hand_on_a_2x3_layer():
    start = torch.tensor([[0.5, 0.0, 1.0], [1.0, 0.0, 2.0]])
    trace = one_update("oja", start, [1.0, 2.0], [1.0, 0.0, 2.0], 0.5)
    # column 0: 0.5·1·(x − 1·H); column 1: post 0, unchanged; column 2: 0.5·2·(x − 2·H)
    assert torch.equal(trace, torch.tensor([[0.75, 0.0, 0.0], [1.5, 0.0, 0.0]]))


@pytest.mark.parametrize("rule", ["hebb", "oja"])
def test_a_shared_write_is_the_batch_mean_of_per_sample_updates(rule):
    torch.manual_seed(0)
    trace, x, post = torch.randn(4, 3), torch.randn(5, 4), torch.randn(5, 3)
    shared = plastic_update(rule, trace, *outer_terms(x, post, per_sample=False), 0.1)
    per_sample = plastic_update(rule, trace.expand(5, 4, 3), *outer_terms(x, post, per_sample=True), 0.1)
    assert torch.allclose(shared, per_sample.mean(0), atol=1e-6)


def test_layer_write_uses_its_own_output_or_the_given_post():
    layer = PlasticLinear(2, 3, eta=0.5, rule="hebb")
    x = torch.tensor([[1.0, 2.0]])
    y = layer(x)
    layer.write_trace(post=torch.tensor([[1.0, 0.0, 2.0]]))
    assert torch.allclose(layer.current_trace(), torch.tensor([[0.5, 0.0, 1.0], [1.0, 0.0, 2.0]]))
    layer.reset_trace()
    layer(x)
    layer.write_trace()
    assert torch.allclose(layer.current_trace(), 0.5 * x.t() @ y.detach())


@pytest.mark.parametrize("mode", ["shared", "per_sample"])
def test_gradients_reach_weights_alpha_and_eta(mode):
    torch.manual_seed(0)
    layer = PlasticLinear(4, 3, rule="hebb", trace=mode, activation="tanh")
    x = torch.randn(2, 4)
    if mode == "shared":
        layer(x)
        layer.write_trace()
        loss = layer(x).pow(2).sum()
    else:
        loss = (layer(x) + layer(x)).pow(2).sum()  # the second step reads the trace the first one wrote
    loss.backward()
    for param in (layer.weight, layer.alpha, layer.eta, layer.bias):
        assert param.grad is not None and bool(param.grad.abs().sum() > 0)


@pytest.mark.parametrize("eta", [-0.01, 0.0, 1.2])
def test_eta_outside_its_range_is_clamped_in_value_but_keeps_its_gradient(eta):
    layer = PlasticLinear(2, 3, rule="hebb", alpha_init=1.0, alpha_init_dist="constant")
    layer.trace.copy_(torch.ones(2, 3))
    layer.pending_outer.copy_(torch.full((2, 3), 3.0))
    with torch.no_grad():
        layer.eta.fill_(eta)
    assert float(layer.rate().detach()) == min(max(eta, 0.0), 1.0)
    layer(torch.ones(1, 2)).sum().backward()
    assert float(layer.eta.grad) == 2 * 3 * (3.0 - 1.0)  # d/dη of Σ x·α·((1-η)H + η·outer): (outer - H) per connection
    layer.project_rate()
    assert float(layer.eta.detach()) == min(max(eta, 0.0), 1.0)


def test_trace_shapes_per_mode():
    shared, episodic = PlasticLinear(4, 3, rule="hebb"), PlasticLinear(4, 3, rule="hebb", trace="per_sample",
                                                                        alpha="scalar")
    x = torch.randn(5, 4)
    shared(x)
    shared.write_trace()
    episodic(x)
    assert shared.trace.shape == (4, 3) and shared.episode is None
    assert episodic.episode.shape == (5, 4, 3) and episodic.alpha.shape == ()
    episodic.reset_episode()
    assert episodic.episode is None


@pytest.mark.parametrize("rule", ["hebb", "oja"])
def test_batch_of_one_reproduces_the_one_sample_loop_shared(rule):
    torch.manual_seed(1)
    layer = PlasticLinear(3, 2, rule=rule, eta=0.2)
    xs, posts = torch.randn(6, 3), torch.rand(6, 2)
    reference_out, reference_trace = one_sample_trajectory(copy.deepcopy(layer), xs, posts)
    outs = []
    with torch.no_grad():
        for x, post in zip(xs, posts):
            outs.append(layer(x[None])[0])
            layer.write_trace(post=post[None])
    assert torch.allclose(torch.stack(outs), reference_out, atol=1e-5)
    assert torch.allclose(layer.current_trace(), reference_trace, atol=1e-5)


@pytest.mark.parametrize("rule", ["hebb", "oja"])
def test_batch_of_one_reproduces_the_one_sample_loop_per_sample(rule):
    torch.manual_seed(2)
    layer = PlasticLinear(3, 2, rule=rule, eta=0.3, trace="per_sample", activation="tanh", alpha_init=0.5,
                          alpha_init_dist="constant")
    xs = torch.randn(6, 3)
    reference_out, reference_trace = one_sample_trajectory(copy.deepcopy(layer), xs)
    with torch.no_grad():
        outs = torch.stack([layer(x[None])[0] for x in xs])
    assert torch.allclose(outs, reference_out, atol=1e-5)
    assert torch.allclose(layer.episode[0], reference_trace, atol=1e-5)


def completion_episode(layer: PlasticLinear, patterns: torch.Tensor, probe: torch.Tensor, steps: int = 3):
    """Show each pattern for `steps` steps, then (from a silent state) the degraded probe; the final state."""
    layer.reset_episode()
    state = torch.zeros_like(probe)
    for k in range(patterns.shape[1]):
        for _ in range(steps):
            state = layer(state, drive=patterns[:, k])
    state = torch.zeros_like(probe)
    for _ in range(2):
        state = layer(state, drive=probe)
    return state


def make_episodes(batch: int, n_patterns: int, bits: int, generator: torch.Generator):
    patterns = torch.randint(0, 2, (batch, n_patterns, bits), generator=generator).float() * 2 - 1
    target = patterns[:, 0]
    keep = torch.rand(batch, bits, generator=generator).argsort(1) < bits // 2  # half of the bits zeroed
    return patterns, target, target * keep


def test_pattern_completion_with_per_sample_traces():
    """Scaled-down sanity task of Miconi et al.: complete ±1 patterns from half of their bits."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    layer = PlasticLinear(32, 32, rule="hebb", trace="per_sample", activation="tanh", alpha_init=0.1,
                          alpha_init_dist="constant", eta=0.1)
    optimizer = torch.optim.Adam(layer.parameters(), lr=3e-3)
    for _ in range(300):
        patterns, target, probe = make_episodes(32, 2, 32, generator)
        loss = (completion_episode(layer, patterns, probe) - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        patterns, target, probe = make_episodes(500, 2, 32, generator)
        completed = completion_episode(layer, patterns, probe).sign()
    accuracy = float((completed == target).float().mean())
    assert accuracy >= 0.95, accuracy


def samples_per_second(layer: PlasticLinear, batch: int, samples: int) -> float:
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-3)
    x, y = torch.randn(samples, layer.in_features), torch.randint(0, layer.out_features, (samples,))
    start = time.process_time()  # CPU time: robust to other jobs on the machine
    for begin in range(0, samples, batch):
        optimizer.zero_grad()
        nn.functional.cross_entropy(layer(x[begin:begin + batch]), y[begin:begin + batch]).backward()
        optimizer.step()
        layer.write_trace(post=nn.functional.one_hot(y[begin:begin + batch], layer.out_features))
    return samples / (time.process_time() - start)


def test_batched_training_is_at_least_20x_faster_than_one_sample_at_a_time():
    torch.manual_seed(0)
    layer = PlasticLinear(400, 10)
    one = samples_per_second(layer, 1, 256)
    batched = samples_per_second(layer, 128, 128 * 40)
    assert batched >= 20 * one, f"{batched:.0f} vs {one:.0f} samples/s"
