"""Operator controls (ensemble/models/policy.py) and the pool's use of them: refusals are one line, come
before any metadata read or download, never tell whether a server path exists; visitors' Hub repos go
without the operator's token; downloads fetch only the weights the index names."""

import json
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import errors as hub
from transformers import AutoConfig

import ensemble.models.pool
from ensemble.config import MemberSpec
from ensemble.errors import LoadError
from ensemble.models.hub import translate
from ensemble.models.memory import facts_from_config
from ensemble.models.placement import GIB
from ensemble.models.policy import NOT_ON_HUB, Policy, is_hub_id, parse_params, split_list
from ensemble.models.pool import ModelPool, download, weight_files

HUB = Path(__file__).parent / "data" / "hub"
PATHLIKE = ["/etc", "/no/such/dir", "~/x", "./models", "../up", "a/b/c", "model.gguf", "C:\\models", "offline:x"]


def test_parsing():
    assert parse_params("9B") == 9 * 10**9 and parse_params("500m") == 5 * 10**8 and parse_params("7.5b") == 7.5e9
    assert parse_params("none") is None and parse_params("") is None and parse_params(123) == 123
    with pytest.raises(ValueError, match="not a parameter count"):
        parse_params("lots")
    assert split_list("a/b, c/*  d/e") == ("a/b", "c/*", "d/e") and split_list(None) == ()
    assert is_hub_id("Qwen/Qwen2.5-0.5B-Instruct") and not any(is_hub_id(p) for p in PATHLIKE)


@pytest.mark.parametrize("model", PATHLIKE)
def test_local_paths_off_refuses_every_path_alike(model, tmp_path):
    policy = Policy(local_paths=False)
    with pytest.raises(LoadError) as refused:
        policy.check(model)
    assert str(refused.value) == f"{model!r}: this server loads Hugging Face Hub models only (owner/name); " \
                                 "local paths are turned off"
    Policy(local_paths=True).check(model)  # allowed when on


def test_existing_and_missing_paths_get_the_same_words(tmp_path):
    (tmp_path / "real").mkdir()
    words = []
    for model in (str(tmp_path / "real"), str(tmp_path / "missing")):
        with pytest.raises(LoadError) as refused:
            Policy(local_paths=False).check(model)
        words.append(str(refused.value).replace(model, "X"))
    assert words[0] == words[1]


def test_a_cwd_folder_named_like_a_repo_answers_as_the_hub_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)
    policy = Policy(local_paths=False)
    policy.check("owner/name")  # the string is a Hub id: allowed
    with pytest.raises(LoadError) as refused:
        policy.locate("owner/name")
    request = httpx2.Request("GET", "https://huggingface.co/owner/missing/resolve/main/config.json")
    missing = hub.RepositoryNotFoundError("404", response=httpx2.Response(404, request=request))
    assert str(refused.value) == NOT_ON_HUB.format("owner/name")
    assert str(translate(missing, "owner/name")) == str(refused.value)  # what a missing repo gets, word for word
    assert policy.locate("owner/other") == ("owner/other", {"token": False})


def test_allow_list_globs_and_operator_models():
    policy = Policy(allow=("HuggingFaceTB/*", "Qwen/Qwen2.5-0.5B-Instruct"), operator_models=frozenset({"a/b"}))
    policy.check_all(["HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "a/b"])
    for model in ("Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"):
        with pytest.raises(LoadError, match=r"is not offered on this server \(allowed: HuggingFaceTB/\*, Qwen"):
            policy.check(model)
    with pytest.raises(LoadError, match="only its presets' models"):
        Policy(allow=()).check("x/y")


def test_token_only_for_operator_models_unless_asked():
    policy = Policy(operator_models=frozenset({"org/private"}))
    assert policy.locate("org/private") == ("org/private", {})  # the operator's own: their token
    assert policy.locate("someone/else") == ("someone/else", {"token": False})
    assert Policy(token_for_visitors=True).locate("someone/else") == ("someone/else", {})
    assert ModelPool().policy.locate("someone/else") == ("someone/else", {})  # the CLI's pool: the user's token


def llama_facts():
    record = json.loads((HUB / "llama-3.1-8b-instruct.json").read_text())
    config = dict(record["config"])
    return record, facts_from_config(AutoConfig.for_model(config.pop("model_type"), **config),
                                     record["parameter_count"])


def test_max_params_refuses_from_metadata_before_download(monkeypatch):
    record, facts = llama_facts()
    seen = []
    monkeypatch.setattr(ensemble.models.pool, "member_facts", lambda spec, where, extra: seen.append(extra) or facts)
    monkeypatch.setattr(ensemble.models.pool, "download", lambda *a: pytest.fail("downloaded"))
    monkeypatch.setattr(ensemble.models.pool, "load_model", lambda *a, **k: pytest.fail("loaded"))
    pool = ModelPool(gpus=[80 * GIB], policy=Policy(max_params=parse_params("7B")))
    with pytest.raises(LoadError, match=r"Llama-3.1-8B-Instruct: 8.03B parameters; this server's limit is 7B"):
        pool.load([MemberSpec(record["repo"])])
    assert seen == [{"token": False}]  # the metadata was read without the operator's token
    ModelPool(gpus=[80 * GIB], policy=Policy(max_params=parse_params("9B"))).place(
        [(0, MemberSpec(record["repo"]))], lambda e: None)  # under the ceiling: placed


def test_max_params_on_a_real_local_model(fixture_dirs, monkeypatch):
    monkeypatch.setattr(ensemble.models.pool, "load_model", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(LoadError, match="this server's limit is 1e-06B"):
        ModelPool(gpus=[], policy=Policy(max_params=1000)).load([MemberSpec(str(fixture_dirs["bpe-qwen2"]))])


def test_weight_files_follow_the_index():
    mistral = ["config.json", "consolidated.safetensors", "model-00001-of-00003.safetensors",
               "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
               "model.safetensors.index.json", "params.json", "tokenizer.model.v3", "tokenizer.json"]
    index = {"weight_map": {f"layer.{i}": f"model-0000{1 + i % 3}-of-00003.safetensors" for i in range(9)}}
    assert weight_files(mistral, index) == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert weight_files(["model.safetensors", "consolidated.safetensors"], None) == ["model.safetensors"]
    assert weight_files(["a.safetensors", "sub/b.safetensors", "c.bin"], None) == ["a.safetensors"]


def test_download_asks_for_the_index_shards_only(monkeypatch, tmp_path):
    files = ["config.json", "consolidated.safetensors", "model-00001-of-00002.safetensors",
             "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json"]
    (tmp_path / "index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    calls = {}
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo, token: calls.setdefault("token", token)
                        and files or files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, name, token: str(tmp_path / "index.json"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo, allow_patterns, token: calls.update(patterns=allow_patterns))
    download("mistralai/Mistral-7B-Instruct-v0.3", token=False)
    assert calls["token"] is False
    assert "consolidated.safetensors" not in calls["patterns"] and "*.safetensors" not in calls["patterns"]
    assert {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "*.json"} <= set(
        calls["patterns"])
