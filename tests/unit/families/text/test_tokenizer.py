"""The word-level tokenizer: normalisation, vocabulary rules, fixed-length encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flywheel.families.text.tokenizer import PAD_ID, UNK_ID, Tokenizer, normalise, tokenize


def test_normalisation_resolves_escapes_entities_and_case() -> None:
    assert normalise("A\\nB &amp; C #36;10 \\x", lowercase=True) == "a b & c $10  x"
    assert normalise("ﬁne Café", lowercase=False) == "fine Café"


def test_tokens_keep_inner_apostrophes_and_single_symbols() -> None:
    assert tokenize("Don't PANIC!! costs $5, ok?") == [
        "don't", "panic", "!", "!", "costs", "$", "5", ",", "ok", "?",
    ]  # fmt: skip
    assert tokenize("") == []
    assert tokenize("Keep", lowercase=False) == ["Keep"]


def test_vocabulary_counts_min_freq_size_and_ties_alphabetically() -> None:
    texts = ["b a c", "a b", "a d", "e"]
    tok = Tokenizer.fit(texts, max_len=4, vocab_size=100, min_freq=2)
    assert tok.vocab == ("<pad>", "<unk>", "a", "b")
    assert Tokenizer.fit(texts, max_len=4, vocab_size=5, min_freq=1).vocab == (
        "<pad>", "<unk>", "a", "b", "c",
    )  # fmt: skip
    # The same texts in another order give the same vocabulary.
    assert (
        Tokenizer.fit(texts[::-1], max_len=4, vocab_size=100).vocab
        == Tokenizer.fit(texts, max_len=4, vocab_size=100).vocab
    )


def test_encode_truncates_pads_and_maps_unknowns() -> None:
    tok = Tokenizer.fit(["a b c"], max_len=3, vocab_size=10)
    ids = tok.encode(["a zzz", "c b a a a", ""])
    assert ids.dtype == np.int64 and ids.shape == (3, 3)
    a, b, c = (tok.vocab.index(t) for t in "abc")
    assert ids.tolist() == [[a, UNK_ID, PAD_ID], [c, b, a], [PAD_ID] * 3]


def test_round_trip_through_json() -> None:
    tok = Tokenizer.fit(["x y z", "x"], max_len=8, vocab_size=10, lowercase=False)
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again == tok and again.encode(["x z q"]).tolist() == tok.encode(["x z q"]).tolist()


def test_bad_vocabularies_and_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="must start"):
        Tokenizer(("a", "<pad>", "<unk>"), max_len=2)
    with pytest.raises(ValueError, match="duplicate"):
        Tokenizer(("<pad>", "<unk>", "a", "a"), max_len=2)
    raw = Tokenizer.fit(["a"], max_len=2, vocab_size=5).to_dict() | {"version": 99}
    with pytest.raises(ValueError, match="re-run preprocess"):
        Tokenizer.from_dict(raw)
