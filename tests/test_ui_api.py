"""The /generate endpoint through gradio_client against the running app (tiny fixture models): the only
documented endpoint, named typed parameters, a stream of the CLI's --json object, and one-line errors."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client

from ensemble.cli import main as cli_main
from tests.browser.server import FIXTURES, launch

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
CLI_KEYS = {"text", "pieces", "members", "method", "finish_reason", "timing", "failures", "solo"}


@pytest.fixture(scope="module")
def served(fixture_dirs, tmp_path_factory):
    url, demo, _ = launch(fixture_dirs, tmp_path_factory.mktemp("api"), max_new_tokens=64, updates_per_second=200)
    yield url, [str(fixture_dirs[n]) for n in FIXTURES]
    demo.close()


def test_only_generate_is_documented_with_named_typed_parameters(served):
    url, _ = served
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/generate"] and not api["unnamed_endpoints"]
    params = {p["parameter_name"]: p["python_type"]["type"] for p in api["named_endpoints"]["/generate"]["parameters"]}
    assert list(params) == ["members", "prompt", "messages", "method", "options", "max_new_tokens", "temperature",
                            "top_p", "seed", "solo"]
    assert params["members"] == "list[str]" and params["max_new_tokens"] == "int" and params["solo"] == "bool"


def test_generate_streams_the_cli_json(served, capsys):
    url, members = served
    job = Client(url, verbose=False).submit(members=members, prompt="Hello there", method="unite",
                                            max_new_tokens=12, solo=True, api_name="/generate")
    updates = list(job)
    final = job.result()
    assert len(updates) >= 2 and updates[-1] == final  # it streamed, and the last update is the whole answer
    assert all(u["finish_reason"] is None for u in updates if len(u["pieces"]) < len(final["pieces"]))
    assert final["finish_reason"] in ("end", "length") and updates[0]["finish_reason"] is None
    assert set(final) == CLI_KEYS and final["text"] == "".join(p["text"] for p in final["pieces"])
    for piece in final["pieces"]:
        assert 0 <= piece["driver"] < 3 and abs(sum(piece["shares"]) - 1) < 1e-3
        assert piece["driver"] == max(range(3), key=lambda i: piece["shares"][i])
    assert [s["member"] for s in final["solo"]] == final["members"] and all(s["text"] for s in final["solo"]), final
    lengths = [len(u["pieces"]) for u in updates]
    assert lengths == sorted(lengths)  # each update extends the last
    argv = ["generate", *(a for m in members for a in ("--model", m)), "--method", "unite", "--prompt",
            "Hello there", "--max-new-tokens", "12", "--solo", "--json"]
    capsys.readouterr()
    assert cli_main(argv) == 0
    cli = json.loads(capsys.readouterr().out)
    assert set(cli) == set(final) and set(cli["timing"]) == set(final["timing"])
    for key in ("text", "members", "method", "finish_reason", "failures", "solo"):
        assert cli[key] == final[key], key  # greedy fp32 tiny models: the same answer, token for token
    assert [(p["text"], p["driver"]) for p in cli["pieces"]] == [(p["text"], p["driver"]) for p in final["pieces"]]


@pytest.mark.parametrize("kwargs, message", [
    ({"members": ["only-one"], "prompt": "hi"}, "members: give 2 to 4"),
    ({"prompt": "hi", "method": "nope"}, "method must be one of"),
    ({"prompt": ""}, "either prompt or messages"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, "last one must be"),
    ({"prompt": "hi", "max_new_tokens": 10_000}, "max_new_tokens must be from 1 to 512"),
])
def test_bad_requests_get_one_line(served, kwargs, message):
    url, members = served
    kwargs = {"members": members, **kwargs}
    with pytest.raises(Exception, match=message):
        Client(url, verbose=False).predict(**kwargs, api_name="/generate")


def test_messages_with_a_system_prompt(served):
    url, members = served
    out = Client(url, verbose=False).predict(
        members=members[:2], messages=[{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Hi"}], max_new_tokens=4, api_name="/generate")
    assert out["pieces"] and "solo" not in out and out["method"] == "unite"
