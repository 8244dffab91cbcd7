"""Bad input gets a clear error naming the problem."""

import pytest

from ensemble.cli import main
from ensemble.config import EnsembleConfig, MemberSpec
from ensemble.decode.prompting import check_messages
from ensemble.errors import ConfigError, LoadError, PromptError
from ensemble.models.locate import locate


def test_member_count_bounds():
    with pytest.raises(ConfigError, match="1 to 4 members, got 0"):
        EnsembleConfig(members=())
    with pytest.raises(ConfigError, match="1 to 4 members, got 5"):
        EnsembleConfig(members=tuple(MemberSpec(f"m{i}/x") for i in range(5)))


def test_unknown_preset_key_names_it():
    with pytest.raises(ConfigError, match="unknown key.*'methd'"):
        EnsembleConfig.from_dict({"members": [{"model": "a/b"}], "methd": "gac"})


def test_unknown_method_lists_choices(fixture_dirs):
    from ensemble.align import make_method

    with pytest.raises(ConfigError, match="unknown method 'deep'.*average, deepen, gac, unite"):
        make_method("deep", [])


def test_unknown_method_option(fixture_dirs):
    from ensemble.align import make_method
    from tests.helpers import load

    with pytest.raises(ConfigError, match="unknown key.*'topk'"):
        make_method("unite", load([fixture_dirs["bpe-qwen2"]]), {"topk": 3})


def test_missing_folder(tmp_path):
    with pytest.raises(LoadError, match="no such folder"):
        locate(str(tmp_path / "nope"))


def test_folder_without_model(tmp_path):
    with pytest.raises(LoadError, match="no config.json"):
        locate(str(tmp_path))


@pytest.mark.parametrize("bad", ["not a repo!", "a/b/c/d", "--x"])
def test_bad_hub_id(bad):
    with pytest.raises(LoadError):
        locate(bad)


def test_unreachable_hub_id_is_a_load_error():
    from ensemble.models.loading import load_model

    with pytest.raises(LoadError, match="could not load 'nobody-here/no-such-model'"):
        load_model(MemberSpec("nobody-here/no-such-model"))


@pytest.mark.parametrize("messages", [[{"role": "user", "content": "  \n"}], [],
                                      [{"role": "assistant", "content": "x"}]])
def test_empty_prompt(messages):
    with pytest.raises(PromptError):
        check_messages(messages)


def test_cli_reports_errors_without_traceback(capsys):
    assert main(["generate", "--prompt", "hi"]) == 2
    assert "give at least one --model" in capsys.readouterr().err
    assert main(["generate", "--model", "./missing-folder", "--prompt", "hi"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_prompt_too_long(fixture_dirs):
    from ensemble.decode.engine import generate_stream
    from tests.helpers import config, load

    paths = [fixture_dirs["bpe-qwen2"]]
    with pytest.raises(PromptError, match="over its limit"):
        list(generate_stream(load(paths), config(paths), [{"role": "user", "content": "word " * 5000}]))


def test_old_turns_dropped_to_fit(fixture_dirs):
    from ensemble.decode.engine import fit_prompt
    from tests.helpers import config, load

    paths = [fixture_dirs["bpe-qwen2"]]
    long = "word " * 300
    messages = [{"role": "user", "content": long}, {"role": "assistant", "content": long},
                {"role": "user", "content": "short question"}]
    prompts = fit_prompt(load(paths), list(messages), config(paths, max_new_tokens=64))
    assert len(prompts[0]) < 50


def test_gguf_locations(tmp_path):
    (tmp_path / "model.Q4.gguf").write_bytes(b"GGUF")
    assert locate(str(tmp_path)) == (str(tmp_path), {"gguf_file": "model.Q4.gguf"})
    assert locate(str(tmp_path / "model.Q4.gguf")) == (str(tmp_path), {"gguf_file": "model.Q4.gguf"})
    (tmp_path / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(LoadError, match="not exactly one .gguf"):
        locate(str(tmp_path))


def test_hub_ids_and_offline_names_pass_through():
    assert locate("Qwen/Qwen2.5-0.5B-Instruct") == ("Qwen/Qwen2.5-0.5B-Instruct", {})
    with pytest.raises(LoadError, match="smollm2-135m-instruct"):
        locate("offline:no-such-model")


def test_cli_rejects_bad_method_and_empty_prompt_before_loading(capsys, monkeypatch):
    import ensemble.models.pool

    monkeypatch.setattr(ensemble.models.pool, "load_models", lambda *a: pytest.fail("loaded models"))
    assert main(["generate", "--model", "a/b", "--method", "deeper", "--prompt", "hi"]) == 2
    assert "unknown method 'deeper'" in capsys.readouterr().err
    assert main(["generate", "--model", "a/b", "--prompt", " \n "]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert main(["generate", "--model", "a/b", "--model", "c/d", "--weight", "1", "--prompt", "hi"]) == 2
    assert "1 --weight values for 2 --model values" in capsys.readouterr().err
