"""The sampler contract, once, for every registered sampler: ours, the peers and any plugin.

Each sampler runs at its own ``"toy"`` example (``samplers.example``) on the ill-conditioned toy
Gaussian, so a new sampler cannot skip these tests: registering it parametrizes them, and a
missing example fails here. A peer whose library is not installed is skipped with the reason.
What is checked: shapes and finite values, ``Info`` (potential at the start, acceptance in
[0, 1], gradient evaluations as declared), bitwise determinism with the same generator seed,
no mutation of the input state, per-chain hyperparameters equal to scalar runs, a 2-D theta, and
a bad hyperparameter refused with :class:`HyperparameterError` saying which and why. The
algorithms' known answers are in tests/test_samplers.py and tests/test_peers.py.
"""

from __future__ import annotations

import pytest
import torch

import samplers
from samplers.peers import PeerUnavailableError, is_peer

NAMES = samplers.names()
CHAINS = 3


def make(name, **changes):
    """Sampler ``name`` at its toy example, or a skip when its library is missing."""
    try:
        return samplers.make(name, **{**samplers.example(name, "toy").hparams, **changes})
    except PeerUnavailableError as err:
        pytest.skip(str(err))


def tensors_of(state):
    return {k: v for k, v in vars(state).items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("name", NAMES)
def test_every_sampler_declares_a_toy_example_it_accepts(name):
    example = samplers.example(name, "toy")
    unknown = set(example.hparams) - set(samplers.lookup(name).params)
    assert not unknown, f"{name}'s toy example sets {unknown}, which it does not take"


@pytest.mark.parametrize("name", NAMES)
def test_shapes_finite_values_and_info(name, target, run_sampler):
    theta = target.init(0, CHAINS)
    sampler = make(name)
    state, infos = run_sampler(sampler, theta, target.potential(), steps=4)
    assert state.theta.shape == theta.shape and state.theta.dtype == theta.dtype
    assert torch.isfinite(state.theta).all()
    for info in infos:
        assert info.accept_prob.shape == (CHAINS,) and info.diverged.shape == (CHAINS,)
        assert info.potential.shape == (CHAINS,) and torch.isfinite(info.potential).all()
        assert info.diverged.dtype == torch.bool and not info.diverged.any()
        assert ((info.accept_prob >= 0) & (info.accept_prob <= 1)).all()
        assert isinstance(info.grad_evals, int) and info.grad_evals >= 1
    # Info.potential is U where the step started: the first one is U(theta0)
    torch.testing.assert_close(infos[0].potential, target.potential()(theta), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_grad_evals_are_what_the_sampler_declares(name, target, run_sampler):
    """A sampler with a fixed cost per step spends it at every step after the first (HMC's first
    step computes one more gradient); one with a varying cost says why it cannot declare it."""
    entry = samplers.lookup(name)
    hparams = samplers.example(name, "toy").hparams
    try:
        declared = entry.grad_evals_per_step(hparams)
    except ValueError as err:
        assert "varying number of gradient evaluations" in str(err)
        return
    _, infos = run_sampler(make(name), target.init(0, 2), target.potential(), steps=4)
    assert [info.grad_evals for info in infos[1:]] == [declared] * 3


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_the_same_trajectory_bitwise(name, target, run_sampler):
    theta = target.init(1, CHAINS)
    a, _ = run_sampler(make(name), theta, target.potential(), steps=4, seed=11)
    b, _ = run_sampler(make(name), theta, target.potential(), steps=4, seed=11)
    for key, value in tensors_of(a).items():
        assert torch.equal(value, getattr(b, key)), key
    if samplers.lookup(name).samples:  # an optimizer draws nothing
        c, _ = run_sampler(make(name), theta, target.potential(), steps=4, seed=12)
        assert not torch.equal(a.theta, c.theta)


@pytest.mark.parametrize("name", NAMES)
def test_step_never_mutates_its_input(name, target):
    # through a short warm-up (not BlackJAX's NUTS, whose adaptation takes long to compile)
    adapts = "adapt_steps" in samplers.lookup(name).params and name != "blackjax.nuts"
    sampler = make(name, **({"adapt_steps": 2} if adapts else {}))
    theta = target.init(2, CHAINS)
    theta_before = theta.clone()
    state = sampler.init(theta)
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):  # past warm-ups that freeze or adapt
        snapshot = {k: v.clone() for k, v in tensors_of(state).items()}
        new, _ = sampler.step(state, target.potential(), None, generator)
        for key, value in snapshot.items():
            assert torch.equal(getattr(state, key), value), key
        assert new is not state
        again, _ = sampler.step(state, target.potential(), None, torch.Generator().manual_seed(5))
        replay, _ = sampler.step(state, target.potential(), None, torch.Generator().manual_seed(5))
        assert torch.equal(again.theta, replay.theta)  # the old state still steps the same way
        state = new
    assert torch.equal(theta, theta_before)


@pytest.mark.parametrize("name", NAMES)
def test_per_chain_hyperparameters_match_scalar_runs(name, target, run_sampler):
    """A ``(C,)`` step size gives chain c what a scalar run with that value gives it: exactly
    (float64) for ours; to float32 rounding for a peer that computes in JAX or per chain."""
    step = samplers.example(name, "toy").hparams["step_size"]
    values = [step * f for f in (1.0, 0.5, 0.25)]
    peer = is_peer(samplers.lookup(name))
    dtype = torch.float32 if peer else torch.float64
    tolerance = {} if peer else dict(rtol=1e-12, atol=1e-12)
    theta = target.init(3, 3, dtype=dtype)
    vector = make(name, step_size=torch.tensor(values, dtype=dtype))
    together, _ = run_sampler(vector, theta, target.potential(), steps=3, seed=4)
    for c, value in enumerate(values):
        alone, _ = run_sampler(make(name, step_size=value), theta, target.potential(), 3, seed=4)
        torch.testing.assert_close(together.theta[c], alone.theta[c], **tolerance)


@pytest.mark.parametrize("name", NAMES)
def test_theta_must_be_two_dimensional(name, target):
    sampler = make(name)
    state = sampler.init(target.init(0, 2))
    bad = type(state)(**{**vars(state), "theta": state.theta[0]})
    with pytest.raises(ValueError, match="2-D"):
        sampler.step(bad, target.potential(), None, torch.Generator())


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_hyperparameter_says_which_and_why(name):
    """Refused when the sampler is made (before its library is imported, for a peer)."""
    why = samplers.lookup(name).params["step_size"].why
    with pytest.raises(samplers.HyperparameterError) as err:
        samplers.make(name, step_size=-1.0)
    message = str(err.value)
    assert message.startswith(f"{name}: step_size must be > 0") and f"({why})" in message
    with pytest.raises(samplers.HyperparameterError, match=r"unknown hyperparameter\(s\) \['lr'\]"):
        samplers.make(name, lr=1e-3)
