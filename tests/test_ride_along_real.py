"""Ride-along solo answers on the three real offline default models in fp32 (issue 17): each solo answer equals
that member's own `model.generate`, token for token, while it rides along and after it forks."""

import pytest

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.engine import Ensemble
from ensemble.decode.events import Finished
from ensemble.decode.prompting import prompt_ids
from ensemble.models.offline import MANIFEST, model_dir
from tests.helpers import greedy_ids
from tests.test_ride_along import spy_runs

pytestmark = pytest.mark.slow
NAMES = [m.name for m in MANIFEST]


@pytest.fixture(scope="module")
def trio_fp32():
    if not all((model_dir(n) / ".complete").exists() for n in NAMES):
        pytest.skip("offline models not prepared: run bash scripts/install-models.sh")
    from ensemble.models.pool import load_models

    return load_models([MemberSpec(f"offline:{n}", dtype="fp32") for n in NAMES])


@pytest.mark.parametrize("method", ["unite"])
def test_solo_answers_equal_generate_under_ride_along(trio_fp32, monkeypatch, method):
    models, n = trio_fp32, 20
    messages = [{"role": "user", "content": "Write a Python function that reverses a string."}]
    cfg = EnsembleConfig(members=tuple(m.spec for m in models), method=method,
                         sampling=SamplingConfig(max_new_tokens=n))
    runs = spy_runs(monkeypatch)
    events = list(Ensemble(models, cfg).stream(messages, solo=True))
    done = {e.stream: e for e in events if isinstance(e, Finished)}
    for i, lm in enumerate(models):
        solo = runs[1 + i].members[0]
        assert solo.answer == greedy_ids(lm, prompt_ids(lm.tokenizer, messages), n), lm.name
        assert solo.forwards == done[i].stats.steps - done[i].stats.rode, lm.name
    assert max(done[i].stats.rode for i in range(3)) >= 2, [done[i].stats for i in range(3)]
    assert all(r.members[0].cache is None for r in runs)  # freed at the end
