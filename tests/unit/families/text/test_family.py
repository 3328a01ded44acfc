"""The text family's preprocessing, leakage guard, encoding and network contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.text_corpus import NEWS_PARAMS, news_corpus

from flywheel.core.config import Params, parse_params
from flywheel.core.errors import InputError
from flywheel.core.layout import Layout
from flywheel.datasets.arrays import load_split
from flywheel.families import get_family
from flywheel.families.text.family import TextFamily, TextSpec
from flywheel.families.text.network import TextCNN
from flywheel.families.text.sources import text_hash
from flywheel.families.text.tokenizer import PAD_ID, UNK_ID, Tokenizer


@pytest.fixture
def params() -> Params:
    return parse_params(NEWS_PARAMS)


def accepted_frame(n_per_class: int = 20) -> pd.DataFrame:
    rows = news_corpus(n_per_class, seed=3)
    # A unique "ref<i>" word per row shows which split a vocabulary entry came from.
    texts = [f"{title}\n{body} ref{i}" for i, (_, title, body) in enumerate(rows)]
    return pd.DataFrame(
        {
            "path": [f"news.csv:{i + 1}" for i in range(len(rows))],
            "text": texts,
            "label": [label for label, _, _ in rows],
            "text_sha256": [text_hash(t) for t in texts],
        }
    )


def test_registry_returns_the_text_family() -> None:
    assert isinstance(get_family("text_classification"), TextFamily)


def test_preprocess_splits_without_leakage_and_learns_vocab_on_train(
    params: Params, tmp_path: Path
) -> None:
    layout = Layout.from_params(params, tmp_path)
    layout.preprocessed_dir.mkdir(parents=True)
    accepted = accepted_frame()
    counts = TextFamily().preprocess(params, layout, accepted)
    assert sum(counts.values()) == len(accepted)

    index = json.loads(layout.split_index.read_text())
    by_path = dict(zip(accepted["path"], accepted["text_sha256"], strict=True))
    split_hashes = {name: {by_path[p] for p in paths} for name, paths in index.items()}
    assert not split_hashes["train"] & split_hashes["val"]
    assert not split_hashes["train"] & split_hashes["test"]
    assert not split_hashes["val"] & split_hashes["test"]

    spec = TextFamily().load_spec(layout.preprocessing_spec)
    # Rows in split order (positions ascending), as preprocess wrote them.
    train_rows = accepted[accepted["path"].isin(index["train"])].set_index("path")
    cfg = params.text
    assert spec.tokenizer == Tokenizer.fit(
        train_rows["text"], max_len=cfg.max_len, vocab_size=cfg.vocab_size, min_freq=cfg.min_freq
    )
    refs = {tok for tok in spec.tokenizer.vocab if tok.startswith("ref")}
    assert refs == {t.split()[-1] for t in train_rows["text"]}

    x, y = load_split(layout.split_file("train"))
    assert x.dtype == np.int64 and x.shape[1] == 32 and y.dtype == np.int64
    # encode reproduces preprocessing from raw text exactly.
    raw = TextFamily().instances_from_rows(params, layout, train_rows)
    assert np.array_equal(TextFamily().encode(raw, spec), x)


def test_copies_of_a_text_land_in_one_split(params: Params, tmp_path: Path) -> None:
    layout = Layout.from_params(params, tmp_path)
    layout.preprocessed_dir.mkdir(parents=True)
    accepted = accepted_frame()
    # A suite without the uniqueness check let every row through twice.
    doubled = pd.concat([accepted, accepted.assign(path=accepted["path"] + "b")])
    TextFamily().preprocess(params, layout, doubled.reset_index(drop=True))
    index = json.loads(layout.split_index.read_text())
    where = {path: name for name, paths in index.items() for path in paths}
    assert len(where) == len(doubled)
    for path in accepted["path"]:
        assert where[path] == where[path + "b"], path


def spec(max_len: int = 8) -> TextSpec:
    return TextSpec(("1", "2"), Tokenizer.fit(["alpha beta gamma"], max_len=max_len, vocab_size=10))


def test_encode_accepts_strings_and_title_text_objects() -> None:
    family, s = TextFamily(), spec()
    a = family.encode(
        ["Alpha\nbeta", {"title": "alpha", "text": "beta"}, {"text": "alpha beta"}], s
    )
    assert a.shape == (3, 8) and a.dtype == np.int64
    assert a[0].tolist() == a[1].tolist() == a[2].tolist()
    assert family.encode(["delta"], s)[0, 0] == UNK_ID


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        (3, "instance 1: expected a string"),
        (None, "instance 1: expected a string"),
        ({"body": "x"}, "instance 1: expected a string"),
        ({"text": 5}, "instance 1: 'text' and 'title' must be strings"),
        ({"text": "x", "title": ["t"]}, "instance 1: 'text' and 'title' must be strings"),
        ({"text": "x", "extra": 1}, "instance 1: unexpected fields"),
        ("   ", "instance 1: text is empty"),
        ({"text": "", "title": ""}, "instance 1: text is empty"),
    ],
)
def test_encode_names_the_bad_instance(instance: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TextFamily().encode(["fine", instance], spec())


def test_spec_round_trip(tmp_path: Path) -> None:
    s = spec()
    s.save(tmp_path / "p.json")
    assert TextSpec.load(tmp_path / "p.json") == s


def test_read_inputs_rejects_invalid_utf8(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_bytes("\ufeffnews text".encode())
    bad.write_bytes(b"caf\xe9")
    assert TextFamily().read_inputs([good]) == ["news text"]
    with pytest.raises(InputError, match=r"bad\.txt: not valid UTF-8"):
        TextFamily().read_inputs([good, bad])
    with pytest.raises(InputError, match="cannot read"):
        TextFamily().read_inputs([tmp_path / "missing.txt"])


def test_network_ignores_padding_and_returns_logits(params: Params) -> None:
    torch.manual_seed(0)
    net = TextCNN(50, 4, embedding_dim=8, channels=(16, 8), kernel_size=3, hidden=(8,)).eval()
    short = torch.randint(2, 50, (3, 6))
    long = torch.full((3, 20), PAD_ID, dtype=torch.int64)
    long[:, :6] = short
    assert net(short).shape == (3, 4)
    assert torch.equal(net(short), net(long))
    with pytest.raises(ValueError, match="odd"):
        TextCNN(50, 4, kernel_size=4)


def test_word_dropout_only_touches_real_tokens(params: Params) -> None:
    augment = TextFamily().train_augment(params)
    assert augment is not None
    ids = torch.tensor([[5, 6, 7, PAD_ID, PAD_ID]] * 200)
    out = augment(ids)
    assert torch.equal(out[:, 3:], ids[:, 3:])
    changed = out[:, :3] != ids[:, :3]
    assert changed.any() and (out[:, :3][changed] == UNK_ID).all()
