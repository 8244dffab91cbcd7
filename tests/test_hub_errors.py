"""Hub and transformers failures become one clear LoadError line. The Hub client's exceptions are faked;
nothing here touches the network."""

import json

import httpx2
import pytest
import transformers
from huggingface_hub import errors as hub

from ensemble.config import MemberSpec
from ensemble.errors import LoadError
from ensemble.models.hub import member_facts, translate
from ensemble.models.loading import load_model
from ensemble.models.locate import locate

REPO = "someone/some-model"
OFFLINE = "cannot reach the Hugging Face Hub"


def http_error(cls, status):
    request = httpx2.Request("GET", f"https://huggingface.co/{REPO}/resolve/main/config.json")
    return cls(f"{status} Client Error", response=httpx2.Response(status, request=request))


def wrapped(inner: Exception) -> OSError:
    """As transformers raises it: an OSError from the Hub client's error."""
    try:
        raise inner
    except Exception as e:
        try:
            raise OSError(f"{REPO} is not a local folder and is not a valid model identifier") from e
        except OSError as outer:
            return outer


CASES = {
    "unknown repo": (wrapped(http_error(hub.RepositoryNotFoundError, 404)), "no such model on the Hugging Face Hub"),
    "gated": (wrapped(http_error(hub.GatedRepoError, 403)), "gated repo.*HF_TOKEN"),
    "offline": (wrapped(hub.LocalEntryNotFoundError("outgoing traffic has been disabled")), OFFLINE),
    "no network": (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"), OFFLINE),
    "unsupported": (ValueError("The checkpoint you are trying to load has model type `zeta9` but Transformers does "
                               "not recognize this architecture."), "architecture is not supported"),
    "remote code": (ValueError(f"The repository {REPO} contains custom code which must be executed to correctly "
                               "load the model. Please pass the argument `trust_remote_code=True` to allow custom "
                               "code to be run."), "trust_remote_code: true"),
}


@pytest.mark.parametrize("case", CASES)
def test_load_model_translates(monkeypatch, case):
    error, expected = CASES[case]
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise error

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    with pytest.raises(LoadError, match=f"could not load '{REPO}': .*{expected}"):
        load_model(MemberSpec(REPO))
    assert seen["trust_remote_code"] is False  # never on unless the member asks


@pytest.mark.parametrize("case", CASES)
def test_estimate_translates_before_any_download(monkeypatch, case):
    error, expected = CASES[case]
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", lambda *a, **k: (_ for _ in ()).throw(error))
    with pytest.raises(LoadError, match=expected):
        member_facts(MemberSpec(REPO), *locate(REPO))


def test_messages_are_one_line():
    for error, _ in CASES.values():
        assert "\n" not in str(translate(error, REPO))


def test_unknown_error_keeps_its_first_line():
    assert str(translate(RuntimeError("boom\nstack"), REPO)) == f"could not load {REPO!r}: boom"


def test_real_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "zeta9", "architectures": ["ZetaForCausalLM"]}))
    with pytest.raises(LoadError, match="architecture is not supported"):
        member_facts(MemberSpec(str(tmp_path)), *locate(str(tmp_path)))


def test_real_remote_code_is_refused_unless_asked(tmp_path):
    auto_map = {"AutoConfig": "configuration_zeta.ZetaConfig", "AutoModelForCausalLM": "modeling_zeta.ZetaLM"}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "zeta9", "auto_map": auto_map}))
    (tmp_path / "configuration_zeta.py").write_text(
        "from transformers import PretrainedConfig\n\nclass ZetaConfig(PretrainedConfig):\n    model_type = 'zeta9'\n")
    with pytest.raises(LoadError, match="trust_remote_code: true"):
        member_facts(MemberSpec(str(tmp_path)), *locate(str(tmp_path)))
