"""A small synthetic, labelled news-like corpus for the text-classification tests.

Each topic has its own subjects, verbs and objects; places, days and filler words are
shared, and one word in five is drawn from another topic, so a model has to learn which
words matter rather than match one keyword. Deterministic for a given seed, and every text
is unique (a serial number is part of the title) so no check for copies fires by accident.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

TOPICS: dict[str, dict[str, list[str]]] = {
    "1": {  # world
        "subj": ["ministers", "rebels", "diplomats", "the president", "parliament", "envoys"],
        "verb": ["condemned", "negotiated", "signed", "rejected", "debated", "announced"],
        "obj": ["a ceasefire", "the treaty", "sanctions", "border talks", "an election", "aid"],
    },
    "2": {  # sports
        "subj": ["the striker", "the coach", "the champions", "the goalkeeper", "the team"],
        "verb": ["scored", "defeated", "won", "clinched", "celebrated", "tied"],
        "obj": ["the final", "a penalty", "the league title", "the cup", "a hat-trick", "gold"],
    },
    "3": {  # business
        "subj": ["investors", "the bank", "shareholders", "the retailer", "analysts"],
        "verb": ["reported", "forecast", "acquired", "raised", "cut", "merged"],
        "obj": ["quarterly profit", "interest rates", "the stock price", "revenue", "dividends"],
    },
    "4": {  # sci/tech
        "subj": ["researchers", "the software firm", "engineers", "astronomers", "developers"],
        "verb": ["launched", "discovered", "released", "patched", "designed", "tested"],
        "obj": ["a new chip", "the browser", "a telescope", "an update", "the spacecraft"],
    },
}
PLACES = ["in London", "in Tokyo", "in Paris", "in Nairobi", "in Boston", "in Sydney", "in Lima"]
DAYS = ["on Monday", "on Tuesday", "on Friday", "this week", "late on Sunday", "yesterday"]
FILLER = ["officials said", "reports say", "according to sources", "it was confirmed"]
LABELS = tuple(TOPICS)


def _sentence(rng: random.Random, topic: str) -> str:
    words = TOPICS[topic]
    other = TOPICS[rng.choice([t for t in TOPICS if t != topic])]
    parts = [rng.choice(words["subj"]), rng.choice(words["verb"]), rng.choice(words["obj"])]
    if rng.random() < 0.2:  # confusers: one phrase from another topic
        key = rng.choice(["subj", "verb", "obj"])
        parts[["subj", "verb", "obj"].index(key)] = rng.choice(other[key])
    return f"{' '.join(parts)} {rng.choice(PLACES)} {rng.choice(DAYS)}, {rng.choice(FILLER)}."


def news_corpus(per_class: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``(label, title, description)`` rows, ``per_class`` of each of :data:`LABELS`."""
    rng = random.Random(seed)
    rows = []
    for n in range(per_class):
        for topic in TOPICS:
            title = f"{rng.choice(TOPICS[topic]['subj']).title()} story {n}"
            body = " ".join(_sentence(rng, topic) for _ in range(rng.randint(1, 3)))
            rows.append((topic, title, body.capitalize()))
    rng.shuffle(rows)
    return rows


def write_news_csv(path: Path, rows: list[tuple[str, str, str]], header: bool = False) -> Path:
    """AG-news style: every field quoted, optionally with a ``class,title,description`` header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
        if header:
            writer.writerow(["class", "title", "description"])
        writer.writerows(rows)
    return path


def write_news_folder(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    """``<root>/<label>/<n>.txt`` holding ``title`` and ``description`` on two lines."""
    for n, (label, title, body) in enumerate(rows):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n:05d}.txt").write_text(f"{title}\n{body}\n", encoding="utf-8")
    return root


NEWS_PARAMS = {
    "task": "text_classification",
    "data": {
        "kind": "table",
        "format": "csv",
        "header": False,
        "label_column": 0,
        "title_column": 1,
        "text_column": 2,
    },
    "text": {"max_len": 32, "vocab_size": 2000, "min_freq": 1},
    "validate": {"suite": "news-test", "labels": list(LABELS), "min_chars": 10},
    "model": {
        "embedding_dim": 16,
        "channels": [32],
        "kernel_size": 3,
        "hidden": [],
        "dropout": 0.1,
    },
}
