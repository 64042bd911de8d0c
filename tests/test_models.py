"""`opinbench.models`: the packaged GGUF -> Hugging Face folder conversion, without loading a model."""

from __future__ import annotations

import warnings

import opinbench.models as M


class _Saved:
    """Stands in for a model or tokenizer: records how it was loaded, writes a config when saved."""

    calls: list[dict] = []

    def __init__(self):
        self.config = type("Config", (), {})()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        if "dtype" in kwargs or "torch_dtype" in kwargs:
            cls.calls.append(kwargs)
        if "torch_dtype" in kwargs:  # what transformers 5 says for it
            warnings.warn("`torch_dtype` is deprecated! Use `dtype` instead!", FutureWarning, stacklevel=2)
        return cls()

    def save_pretrained(self, folder):
        (folder / "config.json").write_text("{}")


def test_conversion_asks_for_dtype_not_the_deprecated_torch_dtype(tmp_path, monkeypatch):
    import torch
    import transformers

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"")
    monkeypatch.setattr(M, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(M, "gguf_file", lambda name: gguf)
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", _Saved)
    monkeypatch.setattr(transformers, "AutoTokenizer", _Saved)
    _Saved.calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # transformers' deprecation warning fails the test
        folder = M.model_path("smollm2")
    assert (folder / "config.json").is_file()
    assert _Saved.calls == [{"gguf_file": "m.gguf", "dtype": torch.float32}]
