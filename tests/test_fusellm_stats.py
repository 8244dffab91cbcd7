"""The paired bootstrap interval on constructed cases whose answer is known."""

import math

import numpy as np
import pytest

from ensemble.errors import ConfigError
from ensemble.fusellm.stats import paired_bootstrap


def test_a_constant_difference_per_byte_has_a_point_interval():
    nbytes = np.array([100, 250, 80, 400])
    b = np.array([70.0, 150.0, 60.0, 300.0])
    a = b + 0.01 * nbytes  # every block 0.01 nats per byte worse
    delta, low, high = paired_bootstrap(a, b, nbytes)
    assert delta == pytest.approx(0.01 / math.log(2))
    assert low == pytest.approx(delta) and high == pytest.approx(delta)


def test_the_interval_matches_the_normal_approximation_of_a_known_spread():
    n = 400
    d = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)  # mean 0, standard deviation 1 per block
    nbytes = np.ones(n)
    delta, low, high = paired_bootstrap(d + 5.0, np.full(n, 5.0), nbytes, resamples=20_000)
    half = 1.96 / math.sqrt(n) / math.log(2)
    assert delta == pytest.approx(0.0, abs=1e-12)
    assert low == pytest.approx(-half, rel=0.1) and high == pytest.approx(half, rel=0.1)


def test_pairing_cancels_what_both_models_share_and_the_seed_fixes_the_draw():
    rng = np.random.default_rng(1)
    nbytes = rng.integers(50, 500, 200).astype(float)
    shared = rng.normal(0, 50, 200)  # some blocks are much harder for both models
    noise = rng.normal(0, 0.5, 200)
    b = 0.8 * nbytes
    first = paired_bootstrap(b + noise, b, nbytes)
    assert paired_bootstrap(b + noise + shared, b + shared, nbytes) == pytest.approx(first)
    assert paired_bootstrap(b + noise, b, nbytes) == first  # seeded
    assert paired_bootstrap(b + noise, b, nbytes, seed=1) != first
    assert first[1] < first[0] < first[2]


def test_mismatched_arrays_are_refused():
    with pytest.raises(ConfigError):
        paired_bootstrap([1.0, 2.0], [1.0], [1, 1])
