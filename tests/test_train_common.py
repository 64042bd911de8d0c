"""Shared fixtures of the training tests (imported by the other ``test_train_*`` modules), and
tests of the pieces every command uses: the checkpoint folder logic and the data hash.

Everything runs offline on tiny random models (tests/helpers/tiny_models.py) and tiny
releases written in the original formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

from opinbench.errors import ConfigError  # noqa: E402
from opinbench.train import checkpoint as C  # noqa: E402
from opinbench.train.data import data_hash  # noqa: E402
from tests.helpers.opinionqa_files import write_tiny_release  # noqa: E402
from tests.helpers.tiny_models import build_model  # noqa: E402



@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory) -> Path:
    """An OpinionQA human_resp release: 8 questions x (SEX: 2, POLPARTY: 2 groups)."""
    return write_tiny_release(tmp_path_factory.mktemp("oqa-release"), 8)


@pytest.fixture(scope="session")
def tiny_wom(tmp_path_factory) -> Path:
    """A Wahl-o-Mat release: one election, two parties (SPD, Testpartei), 10 theses with comments."""
    from tests.test_data_wahlomat import write_release

    root = tmp_path_factory.mktemp("wom-release")
    write_release(root, n_theses=10)
    return root


@pytest.fixture(scope="session", params=["merged", "split"])
def tiny_model(request, tmp_path_factory) -> Path:
    return build_model(request.param, tmp_path_factory.mktemp(f"model-{request.param}"))


@pytest.fixture(scope="session")
def merged_model(tmp_path_factory) -> Path:
    return build_model("merged", tmp_path_factory.mktemp("model-merged-only"))


def sft_config(model: Path, release: Path, out: Path, **over):
    from opinbench.train.config import SFTConfig

    kw = dict(
        model=str(model), data="opinionqa", task_metadata={"source": str(release)}, output_dir=str(out),
        per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=2, save_steps=1,
        test_fraction=0.5, learning_rate=1e-2, num_threads=1,
    )
    return SFTConfig(**(kw | over))


# --------------------------------------------------------------------------- checkpoint folders


def test_prepare_fresh_resume_done_and_mismatch(tmp_path):
    run = tmp_path / "run"
    fp = {"learning_rate": 1e-3}
    assert C.prepare(run, fingerprint=fp, data_hash="h", resume="auto", overwrite=False) == ("fresh", None)
    assert json.loads((run / C.RUN_FILE).read_text())["fingerprint"] == fp
    # an unfinished run with a complete trainer checkpoint is resumed (the newest complete one)
    for n, complete in ((2, True), (4, True), (6, False)):
        ck = run / C.TRAINER_DIR / f"checkpoint-{n}"
        ck.mkdir(parents=True)
        if complete:
            (ck / "trainer_state.json").write_text("{}")
    assert C.prepare(run, fingerprint=fp, data_hash="h", resume="auto", overwrite=False) == (
        "resume", run / C.TRAINER_DIR / "checkpoint-4")
    with pytest.raises(ConfigError, match="resume: never"):
        C.prepare(run, fingerprint=fp, data_hash="h", resume="never", overwrite=False)
    # other settings or other data: refused, naming what changed
    with pytest.raises(ConfigError, match=r"learning_rate: 0.001 -> 0.01"):
        C.prepare(run, fingerprint={"learning_rate": 1e-2}, data_hash="h", resume="auto", overwrite=False)
    with pytest.raises(ConfigError, match="data_hash: h -> h2"):
        C.prepare(run, fingerprint=fp, data_hash="h2", resume="auto", overwrite=False)
    # finished: left alone
    C.write_metadata(run, {"complete": True})
    assert C.prepare(run, fingerprint=fp, data_hash="h", resume="auto", overwrite=False) == ("done", None)
    # --overwrite starts over
    assert C.prepare(run, fingerprint={"x": 1}, data_hash="h3", resume="auto", overwrite=True) == ("fresh", None)
    assert not (run / C.TRAINER_DIR).exists() and not (run / C.META_FILE).exists()


def test_prepare_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no opinbench run"):
        C.prepare(tmp_path, fingerprint={}, data_hash="h", resume="auto", overwrite=False)


def test_data_hash_is_order_independent_and_content_sensitive():
    a = [{"id": "1", "prompt": "x"}, {"id": "2", "prompt": "y"}]
    assert data_hash(a) == data_hash(list(reversed(a)))
    assert data_hash(a) != data_hash([{"id": "1", "prompt": "x "}, {"id": "2", "prompt": "y"}])


def test_slug_and_eval_command(tmp_path):
    assert C.slug("2021/deutschland:DIE LINKE") == "2021-deutschland-DIE-LINKE"
    cmd = C.eval_command(base_path="/m", checkpoint=tmp_path, task="wom_cot",
                         metadata={"split": "test", "subject": "2021/deutschland:SPD"}, apply_chat_template=True)
    assert cmd.startswith("lm_eval --model hf --model_args pretrained=/m,peft=")
    assert "--tasks wom_cot" in cmd and "--apply_chat_template" in cmd
    assert "'{\"split\": \"test\", \"subject\": \"2021/deutschland:SPD\"}'" in cmd
