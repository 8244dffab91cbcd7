"""app.Models (ensemble/models/backend.py): idle sets are evicted before a new set is placed, a set that is
answering is never evicted, and the policy refuses before the pool is touched."""

import pytest

from app import Models
from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.errors import LoadError
from ensemble.models.placement import CUDA_CONTEXT
from ensemble.models.policy import Policy
from ensemble.models.pool import ModelPool

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def config(fixture_dirs, *names):
    members = tuple(MemberSpec(str(fixture_dirs[n]), dtype="fp32") for n in names)
    return EnsembleConfig(members=members, method="unite", sampling=SamplingConfig(max_new_tokens=2))


def one_set_gpu(fixture_dirs, a, b) -> list[int]:
    """A simulated GPU that holds either set but not both."""
    probe = ModelPool(gpus=[0])
    sets = [sum(probe.need(0, m).sizes["fp32"] for m in set(c.members)) for c in (a, b)]
    assert min(sets) > 0
    return [CUDA_CONTEXT + int(max(sets) * 1.3)]


def test_idle_sets_make_room_before_placing(fixture_dirs):
    a = config(fixture_dirs, "bpe-qwen2", "uni-llama")
    gemma = MemberSpec(str(fixture_dirs["uni-gemma3"]), dtype="fp32")
    b = EnsembleConfig(members=(gemma, MemberSpec(gemma.model, dtype="fp32", weight=2.0)), method="gac",
                       sampling=a.sampling)  # uni-gemma3 twice (one load): nothing shared with a
    models = Models(pool=ModelPool(gpus=one_set_gpu(fixture_dirs, a, b)))
    models.load(a, lambda *x: None)
    with pytest.raises(LoadError, match="short by"):  # a is answering: it stays, so b cannot fit
        models.busy[models.key(a)] += 1
        try:
            models.load(b, lambda *x: None)
        finally:
            models.busy[models.key(a)] -= 1
    assert models.key(a) in models.ensembles
    models.load(b, lambda *x: None)  # a is idle now: evicted first, then b placed
    assert list(models.ensembles) == [models.key(b)]
    assert {s.model for s in models.pool.loaded()} == {str(fixture_dirs["uni-gemma3"])}


def test_keep_counts_sets_and_frees_unused_members(fixture_dirs):
    models = Models(keep=2, pool=ModelPool(gpus=[]))
    sets = [config(fixture_dirs, "bpe-qwen2", "uni-llama"), config(fixture_dirs, "uni-llama", "uni-gemma3"),
            config(fixture_dirs, "uni-gemma3", "bpe-qwen2")]
    for c in sets:
        models.load(c, lambda *x: None)
    assert list(models.ensembles) == [models.key(c) for c in sets[1:]]
    assert len(models.pool.loaded()) == 3  # every member is still used by a kept set


def test_policy_refuses_before_the_pool(fixture_dirs, monkeypatch):
    models = Models(pool=ModelPool(gpus=[]), policy=Policy(local_paths=False))
    monkeypatch.setattr(models.pool, "load", lambda *a: pytest.fail("pool touched"))
    with pytest.raises(LoadError, match="local paths are turned off"):
        models.load(config(fixture_dirs, "bpe-qwen2", "uni-llama"), lambda *x: None)


def test_a_served_members_tokenizer_obeys_the_local_path_rule(monkeypatch):
    """The URL itself is the app's --allow-remote to decide; its `tokenizer:` source is read here, so it
    is checked like any model string (a visitor cannot name a server folder through it)."""
    from ensemble.config import EnsembleConfig, MemberSpec

    models = Models(pool=ModelPool(gpus=[]), policy=Policy(local_paths=False))
    monkeypatch.setattr(models.pool, "load", lambda *a: pytest.fail("pool touched"))
    Policy(local_paths=False).check("http://10.0.0.5:8000/v1")
    served = EnsembleConfig(members=(MemberSpec("http://127.0.0.1:9", tokenizer="/etc/secret-model"),
                                     MemberSpec("Qwen/Qwen2.5-0.5B-Instruct")), method="unite")
    with pytest.raises(LoadError, match="local paths are turned off"):
        models.load(served, lambda *x: None)
