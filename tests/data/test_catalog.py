"""The dataset catalog: every entry is complete, a new entry is all a dataset needs, and mistakes fail at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from NeuralNetworks import data
from NeuralNetworks.data import catalog
from NeuralNetworks.data.catalog import CATALOG, DatasetSpec
from NeuralNetworks.data.images import STYLES
from NeuralNetworks.data.splits import Dataset

EXPECTED_STYLES = {"shapes": "quickdraw", "mnist": "mnist", "fashion-mnist": "mnist", "quickdraw": "quickdraw",
                   "folder": catalog.FROM_LOADER, "csv": catalog.FROM_LOADER}  # your own data: the loader decides


def load_two_blobs(data_dir, *, test_only: bool = False, seed: int = 0) -> Dataset:
    """A stand-in loader: reads one marker file so the folder it was given can be checked."""
    marker = Path(data_dir) / "blobs.txt"
    if not marker.is_file():
        raise data.DataError(f"{marker}: file not found")
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1])
    empty = (images[:0], labels[:0]) if test_only else (images, labels)
    return Dataset(*empty, images, labels, label_dict={0: "round", 1: "long"}, name="blobs")


BLOBS = DatasetSpec(name="blobs", loader=load_two_blobs, preprocessing="mnist", files="blobs.txt",
                    aliases=("two-blobs",))


def test_every_entry_names_a_style_and_the_dataset_carries_it(tmp_path, mnist_dir, quickdraw_dir):
    assert {name: spec.preprocessing for name, spec in CATALOG.items()} == EXPECTED_STYLES
    assert data.DATASETS == tuple(EXPECTED_STYLES)
    assert data.load("shapes", samples_per_class=3).preprocessing == "quickdraw"
    assert data.load("mnist", mnist_dir, test_only=True).preprocessing == "mnist"
    dataset = data.load("doodle", quickdraw_dir, classes=["cat"], max_per_class=10)
    assert (dataset.name, dataset.preprocessing) == ("doodle", "quickdraw")
    assert dataset.with_validation(0.5).preprocessing == "quickdraw"  # kept by derived datasets


def test_options_seed_and_size_option_come_from_the_loader():
    assert CATALOG["mnist"].options == ("test_only",) and not CATALOG["mnist"].seeded
    assert CATALOG["quickdraw"].seeded and CATALOG["shapes"].seeded
    assert "name" not in CATALOG["quickdraw"].options  # the catalog names the Dataset itself
    assert [spec.name for spec in CATALOG.values() if spec.size_option] == ["shapes", "quickdraw"]
    assert list(catalog.all_names())[:3] == ["shapes", "mnist", "fashion-mnist"]


@pytest.mark.parametrize("name, folder", [("quickdraw", "datasets/quickdraw"), ("doodle", "datasets/doodle"),
                                          ("Doodles", "datasets/doodle"), ("fashion", "datasets/fashion-mnist"),
                                          ("shapes", None)])
def test_default_folders(name, folder):
    assert data.default_data_dir(name) == (None if folder is None else Path(folder))


def test_a_new_dataset_is_one_spec_plus_its_loader(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(data.DataError, match="datasets/blobs/blobs.txt: file not found"):
        BLOBS.load()
    (tmp_path / "datasets" / "blobs").mkdir(parents=True)
    (tmp_path / "datasets" / "blobs" / "blobs.txt").write_text("")
    dataset = BLOBS.load(alias="two-blobs", seed=3, test_only=True)
    assert (dataset.name, dataset.preprocessing, len(dataset.y_train)) == ("blobs", "mnist", 0)
    assert BLOBS.seeded and BLOBS.options == ("test_only", "seed")
    with pytest.raises(ValueError, match=r"blobs dataset does not take option\(s\) classes; it takes: test_only, seed"):
        BLOBS.load(classes=["round"])
    with pytest.raises(ValueError, match="Downloading blobs is not supported; put blobs.txt in datasets/blobs"):
        BLOBS.download()


def test_a_spec_must_say_its_style():
    with pytest.raises(TypeError, match="preprocessing"):
        DatasetSpec(name="blobs", loader=load_two_blobs, files="blobs.txt")  # type: ignore[call-arg]
    for style in (None, "", "emnist"):
        with pytest.raises(ValueError, match=f"preprocessing` must be one of {', '.join(STYLES)}"):
            dataclasses.replace(BLOBS, preprocessing=style)


def test_a_spec_is_checked_against_its_loader():
    def no_test_only(data_dir, *, seed=0):
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="the loader must accept `test_only`; it takes: seed"):
        dataclasses.replace(BLOBS, loader=no_test_only)
    with pytest.raises(ValueError, match="size_option 'max_per_class' is not a loader option"):
        dataclasses.replace(BLOBS, size_option="max_per_class")


def test_names_are_unique_and_in_normal_form():
    with pytest.raises(ValueError, match="the name 'doodle' is taken by 'quickdraw'"):
        catalog._indexed(*CATALOG.values(), dataclasses.replace(BLOBS, aliases=("doodle",)))
    with pytest.raises(ValueError, match="write 'Two_Blobs' as 'two-blobs'"):
        catalog._indexed(dataclasses.replace(BLOBS, aliases=("Two_Blobs",)))


def test_the_catalog_cannot_be_changed_at_run_time():
    with pytest.raises(TypeError):
        CATALOG["blobs"] = BLOBS  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["mnist"].preprocessing = "quickdraw"  # type: ignore[misc]


def test_download_options_are_checked_against_the_downloader():
    with pytest.raises(ValueError, match=r"Downloading mnist does not take option\(s\) classes; it takes: source, "
                                         "mirrors, progress"):
        data.catalog.find("mnist").download(classes=["cat"])


def test_a_dataset_built_by_hand_has_no_style_unless_given():
    images, labels = np.zeros((2, 28, 28, 1), np.uint8), np.array([0, 1])
    assert Dataset(images, labels, images, labels, label_dict={0: "a", 1: "b"}).preprocessing is None
    with pytest.raises(ValueError, match="preprocessing must be one of quickdraw, mnist, an image or table spec, or null. Received: 'x'"):
        Dataset(images, labels, images, labels, label_dict={0: "a", 1: "b"}, preprocessing="x")


def test_the_docs_table_lists_every_entry_as_it_is():
    page = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text(encoding="utf-8")
    rows = {cells[0].strip("` "): [cell.strip() for cell in cells]
            for cells in (line.strip("|").split("|") for line in page.splitlines() if line.startswith("| `"))}
    for name, spec in CATALOG.items():
        _, aliases, _, style, options, download = rows[name]
        assert aliases.replace("`", "").split(", ") == list(spec.aliases or [""])
        assert (style, options.split(", "), bool(download)) == (spec.preprocessing, list(spec.options),
                                                                spec.downloader is not None)
