"""``flywheel init`` on generated data of every kind: what it decides, that the params file
is minimal and resolves to the decided values, that the suite it writes passes the real
validate stage on that data (rows it flagged quarantined), that a rerun writes the same
bytes, and that data which is not a dataset is refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import onboard_data

from flywheel.core.config import load_params
from flywheel.core.errors import ConfigError, DataError
from flywheel.core.workspace import open_workspace
from flywheel.onboard.params_file import ALWAYS, default_value
from flywheel.onboard.run import InitResult, run_init
from flywheel.stages.validate.run import validate_dataset

PROJECT = Path(__file__).resolve().parents[3]

MAKERS: dict[str, Any] = {
    "photos": lambda root: onboard_data.image_folder(root / "photos", per_class=20),
    "articles": lambda root: onboard_data.text_folder(root / "articles", per_class=12),
    "headlines": lambda root: onboard_data.news_csv(root / "headlines.csv", per_class=12),
    "clinic": lambda root: onboard_data.tabular_csv(root / "clinic" / "clinic.csv"),
    "clinicpq": lambda root: onboard_data.tabular_parquet(root / "clinicpq.parquet"),
    "reviews": lambda root: onboard_data.sentiment_tsv(root / "reviews", per_class=20),
}
OPTIONS: dict[str, dict[str, Any]] = {"reviews": {"task": "sentiment"}}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init-project")
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    for make in MAKERS.values():
        make(root / "datasets")
    return root


@pytest.fixture(scope="module")
def inits(project: Path) -> dict[str, InitResult]:
    data = {name: next((project / "datasets").glob(f"{name}*")) for name in MAKERS}
    return {
        name: run_init(path, project=project, **OPTIONS.get(name, {}))
        for name, path in data.items()
    }


def _file(result: InitResult) -> dict[str, Any]:
    return yaml.safe_load(result.params_file.read_text())


def test_image_folder_decisions(inits: dict[str, InitResult]) -> None:
    raw = _file(inits["photos"])
    assert raw["task"] == "image_classification"
    assert raw["data"]["pattern"] == "*/*"  # README.md at the root stays out
    assert raw["image"]["mode"] == "RGB" and raw["image"]["augment"] is True
    assert raw["validate"]["labels"] == ["horizontal", "vertical"]
    assert set(raw["validate"]["allowed_modes"]) == {"L", "P", "RGB", "RGBA"}
    assert raw["validate"]["allowed_formats"] == ["JPEG", "PNG"]
    # The truncated file and the copy (both copies) are quarantined, not fatal.
    assert raw["validate"]["mostly"] < 1.0


def test_text_folder_decisions(inits: dict[str, InitResult]) -> None:
    raw = _file(inits["articles"])
    assert (raw["task"], raw["data"]["kind"]) == ("text_classification", "text_folder")
    assert raw["data"]["pattern"] == "*/*.txt"  # README.txt at the root is no label
    assert "encoding" not in raw["data"]  # UTF-8, the default; latin1.txt is quarantined
    assert raw["validate"]["labels"] == ["1", "2", "3", "4"]
    assert raw["validate"]["mostly"] < 1.0


def test_table_decisions(inits: dict[str, InitResult]) -> None:
    news = _file(inits["headlines"])["data"]
    assert (news["text_column"], news["title_column"], news["label_column"]) == (
        "description",
        "title",
        "class",
    )
    clinic = _file(inits["clinic"])
    assert clinic["task"] == "tabular_regression"
    assert clinic["data"]["target"] == "progression"
    assert clinic["data"]["categorical_columns"] == ["age_band"]
    rules = clinic["validate"]["columns"]
    assert 0 < rules["bp"]["max_null_share"] < 0.1  # blanks: imputed, share bounded
    assert "60+, retired" in rules["age_band"]["categories"]
    assert _file(inits["clinicpq"])["validate"]["columns"] == rules
    reviews = _file(inits["reviews"])
    assert reviews["task"] == "sentiment"
    assert reviews["data"]["format"] == "tsv" and reviews["data"]["header"] is False
    assert reviews["data"]["pattern"] == "*_labelled.txt"  # not readme.txt
    assert (reviews["data"]["text_column"], reviews["data"]["label_column"]) == (0, 1)


@pytest.mark.parametrize("name", list(MAKERS))
def test_params_are_minimal_and_resolve(inits: dict[str, InitResult], name: str) -> None:
    result = inits[name]
    raw = _file(result)
    params = load_params(result.params_file)
    resolved = params.as_dict()
    for section, body in raw.items():
        for key, value in body.items() if isinstance(body, dict) else [(None, body)]:
            path = (section,) if key is None else (section, key)
            key_id = (None, section) if key is None else (section, key)
            if key_id not in ALWAYS and key != "columns":
                assert value != default_value(result.params.task, path), path
            got = resolved[section] if key is None else resolved[section][key]
            if key != "columns":
                assert got == value or list(got) == value, path
    assert params == result.params


@pytest.mark.parametrize("name", list(MAKERS))
def test_suite_passes_validation_on_the_data(
    inits: dict[str, InitResult], project: Path, name: str
) -> None:
    ws = open_workspace(inits[name].params_file, project)
    report = validate_dataset(ws.params, ws.layout)
    assert report.success
    if name == "articles":
        quarantined = ws.layout.quarantine.read_text()
        assert "1/latin1.txt" in quarantined and "README" not in quarantined


@pytest.mark.parametrize("name", list(MAKERS))
def test_rerun_writes_the_same_bytes(
    inits: dict[str, InitResult], project: Path, name: str
) -> None:
    first = inits[name]
    before = (first.params_file.read_bytes(), first.suite_file.read_bytes())
    data = project / first.params.data.path
    again = run_init(data, project=project, **OPTIONS.get(name, {}))
    assert again.written == ()
    assert (again.params_file.read_bytes(), again.suite_file.read_bytes()) == before


def test_an_edited_file_is_not_overwritten_without_force(
    inits: dict[str, InitResult], project: Path
) -> None:
    result = inits["headlines"]
    text = result.params_file.read_text()
    result.params_file.write_text(text.replace("min_accuracy: 0.4", "min_accuracy: 0.5"))
    with pytest.raises(ConfigError, match="--force"):
        run_init(project / "datasets" / "headlines.csv", project=project)
    run_init(project / "datasets" / "headlines.csv", project=project, force=True)
    assert result.params_file.read_text() == text


def test_a_task_the_data_cannot_train_is_refused(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"image_folder, which trains \['image_classification'\]"):
        run_init(project / "datasets" / "photos", project=project, task="sentiment")


@pytest.mark.parametrize(
    ("case", "found"),
    [
        ("empty", "is empty"),
        ("mixed", "mixes kinds of files"),
        ("binary", "is a binary file"),
        ("one_column", "has 1 column"),
    ],
)
def test_what_is_not_a_dataset_is_refused_in_one_line(
    tmp_path: Path, project: Path, case: str, found: str
) -> None:
    paths = onboard_data.not_datasets(tmp_path)
    with pytest.raises(DataError, match=found) as err:
        run_init(paths[case], project=project)
    assert "\n" not in str(err.value)
    assert not (project / "params" / f"{case}.yaml").exists()


def test_target_names_the_column_to_predict(project: Path, tmp_path: Path) -> None:
    clinic = project / "datasets" / "clinic"
    s1 = run_init(clinic, project=project, target="s1", name="clinic-s1")
    raw = _file(s1)
    assert raw["data"]["target"] == "s1" and "progression" in raw["data"]["numeric_columns"]
    # Headerless: a 0-based position. The label of this news table is its first column.
    rows = [line for line in (project / "datasets" / "headlines.csv").read_text().splitlines()]
    (tmp_path / "bare.csv").write_text("\n".join(rows[1:]) + "\n")
    bare = _file(run_init(tmp_path / "bare.csv", project=project, target="0"))
    assert (bare["data"]["header"], bare["data"]["label_column"]) == (False, 0)
    with pytest.raises(ConfigError, match=r"--target 'nope': the table has no such column"):
        run_init(clinic, project=project, target="nope", name="clinic-nope")


def test_export_tolerance_scales_with_large_targets() -> None:
    from flywheel.onboard.decision import Decision
    from flywheel.onboard.facts import ColumnFacts
    from flywheel.onboard.table_tasks import _export_tolerance

    big = Decision("tabular_regression", "table")
    _export_tolerance(big, ColumnFacts(0, 14999.0, 500001.0))  # house prices
    assert big.raw() == {"evaluate": {"export_atol": 0.6}}
    small = Decision("tabular_regression", "table")
    _export_tolerance(small, ColumnFacts(0, 25.0, 346.0))
    assert small.raw() == {}
