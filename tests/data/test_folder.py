"""Your own image folder as a Dataset: formats, colour and ink-on-paper decisions, per-class seeded splits, the
memory-mapped cache, and the refusals (one class, an empty class)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from NeuralNetworks import data
from NeuralNetworks.data import folder, preprocessing
from NeuralNetworks.data.errors import DataError
from own_data_support import SHAPES, drawing, make_colour_photos, make_drawings, rotated_jpeg

GREY_SPEC = preprocessing.image_spec(20, 20, 1, False)


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    return make_drawings(tmp_path_factory.mktemp("drawings"))


def test_a_folder_of_mixed_drawings_loads_grey_inverted_and_counts_what_it_skipped(drawings):
    dataset = data.load("folder", data_dir=drawings, validation_fraction=0.25)
    assert dataset.class_names == list(SHAPES)
    assert dataset.input_shape == (32, 32, 1)  # RGB, 16-bit and transparent files, but no colour in any
    assert dataset.preprocessing == {"kind": "image", "height": 32, "width": 32, "channels": 1, "invert": True}
    notes = " ".join(dataset.notes)
    assert "skipped 2 hidden or non-image file(s)" in notes and "1 unreadable image(s)" in notes
    assert "broken.png" in notes and "ink on paper" in notes
    assert len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test) == 3 * 12 - 0  # broken.png is extra
    assert np.bincount(dataset.y_test).tolist() == [2, 2, 2] and np.bincount(dataset.y_val).tolist() == [2, 2, 2]
    border = dataset.x_train[:, 0, :, 0]
    assert border.mean() < 40  # inverted: white ink on a black background, as the built-in sets
    assert dataset.x_train.max() > 200


def test_every_encoding_of_a_drawing_becomes_the_same_sample(tmp_path):
    picture = drawing("circle", np.random.default_rng(3))
    reference = folder.prepare_image(picture, GREY_SPEC).astype(int)
    wide = Image.fromarray((np.asarray(picture, np.uint32) * 257).astype(np.uint16))
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 3] = 255 - np.asarray(picture)
    palette = picture.convert("P")
    for variant in (wide, Image.fromarray(rgba, "RGBA"), palette, picture.convert("RGB")):
        difference = np.abs(folder.prepare_image(variant, GREY_SPEC).astype(int) - reference)
        assert difference.max() <= 2, variant.mode  # ink in the alpha channel: paper 255, not the drawing's 230s
    turned = Image.open(io.BytesIO(rotated_jpeg(picture)))
    assert turned.size == (32, 32)
    upright = folder.prepare_image(turned, GREY_SPEC).astype(int)
    assert np.abs(upright - reference).mean() < 6  # JPEG noise only: the EXIF orientation was applied
    sideways = folder.prepare_image(turned.transpose(Image.Transpose.ROTATE_90), GREY_SPEC).astype(int)
    assert np.abs(sideways - reference).mean() > np.abs(upright - reference).mean()


def test_colour_pictures_load_as_rgb_and_flags_force_size_colour_and_inversion(tmp_path):
    photos = make_colour_photos(tmp_path / "photos")
    dataset = data.load("folder", data_dir=photos)
    assert dataset.input_shape == (24, 24, 3) and dataset.preprocessing["invert"] is False
    grey = data.load("folder", data_dir=photos, image_size=(12, 16), color="grayscale", invert=True)
    assert grey.input_shape == (12, 16, 1) and grey.preprocessing["invert"] is True
    assert "inverted" not in " ".join(grey.notes)  # forced: no detection reported


def test_the_split_is_per_class_and_seeded_and_test_only_gives_the_same_test_set(drawings):
    first = data.load("folder", data_dir=drawings, seed=1)
    again = data.load("folder", data_dir=drawings, seed=1, test_only=True)
    other = data.load("folder", data_dir=drawings, seed=2)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert len(again.y_train) == 0
    assert not np.array_equal(first.x_test, other.x_test)
    assert np.bincount(first.y_test).tolist() == [2, 2, 2]  # round(0.2 x 12) - of the readable files
    whole = data.load("folder", data_dir=drawings, whole=True, test_only=True)
    assert len(whole.y_test) == len(first.y_test) + len(first.y_train)


def test_a_large_folder_goes_through_a_memory_mapped_cache_with_the_same_pixels(drawings, tmp_path):
    in_memory = data.load("folder", data_dir=drawings, seed=4)
    cached = data.load("folder", data_dir=drawings, seed=4, cache_dir=tmp_path)
    assert isinstance(cached.x_train, np.memmap) or isinstance(cached.x_train.base, np.memmap)
    np.testing.assert_array_equal(in_memory.x_train, cached.x_train)
    np.testing.assert_array_equal(in_memory.x_test, cached.x_test)
    assert list(tmp_path.iterdir()) == []  # an unnamed temporary file: nothing left behind


def test_the_model_spec_reads_another_folder_the_same_way(drawings):
    trained = data.load("folder", data_dir=drawings, image_size=(20, 20))
    tested = data.load("folder", data_dir=drawings, preprocessing=trained.preprocessing, test_only=True)
    assert tested.preprocessing == trained.preprocessing
    np.testing.assert_array_equal(tested.x_test, trained.x_test)
    path = sorted((drawings / "circle").glob("*.png"))[0]
    assert folder.read_sample(path, trained.preprocessing).shape == (20, 20, 1)


def test_folders_that_cannot_train_a_classifier_are_refused_saying_what_to_do(tmp_path):
    make_drawings(tmp_path / "one", classes=("circle",))
    with pytest.raises(DataError, match="only the class 'circle'; a classifier needs at least 2 classes"):
        data.load("folder", data_dir=tmp_path / "one")
    make_drawings(tmp_path / "empty", classes=("circle", "line"))
    (tmp_path / "empty" / "square").mkdir()
    with pytest.raises(DataError, match="square: the class folder holds no readable image"):
        data.load("folder", data_dir=tmp_path / "empty")
    (tmp_path / "bitmaps").mkdir()
    np.save(tmp_path / "bitmaps" / "cat.npy", np.zeros((2, 784), np.uint8))
    with pytest.raises(DataError, match="no class subfolders, but dataset files .* --dataset quickdraw"):
        data.load("folder", data_dir=tmp_path / "bitmaps")
    make_drawings(tmp_path / "tabs", per_class=2, classes=("a\tb", "c"))
    with pytest.raises(DataError, match="a class folder's name cannot be a label"):
        data.load("folder", data_dir=tmp_path / "tabs")
    with pytest.raises(DataError, match="image folder not found"):
        data.load("folder", data_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="color"):
        data.load("folder", data_dir=tmp_path / "one", color="sepia")


def test_a_drawing_becomes_the_input_of_an_image_model_by_a_resample_the_page_can_repeat():
    bitmap = np.zeros((28, 28), np.uint8)
    bitmap[10:18, 10:18] = 255
    spec = preprocessing.image_spec(14, 21, 3, True)
    sample = folder.strokes_sample(bitmap, spec)
    assert sample.shape == (14, 21, 3) and (sample[..., 0] == sample[..., 2]).all()
    same = folder.resample(bitmap, 28, 28)
    np.testing.assert_array_equal(same, bitmap)  # the identity size changes nothing


@pytest.mark.parametrize("spec, message", [
    ({"kind": "image", "height": 0, "width": 4, "channels": 1, "invert": False}, "height must be an integer"),
    ({"kind": "image", "height": 4, "width": 4, "channels": 2, "invert": False}, "channels must be 1 or 3"),
    ({"kind": "image", "height": 4, "width": 4, "channels": 1, "invert": "yes"}, "invert must be true or false"),
    ({"kind": "image", "height": 4, "width": 4, "channels": 1}, "missing: invert"),
    ({"kind": "video"}, "kind is image or table"),
    ("emnist", "must be one of quickdraw, mnist"),
])
def test_a_hostile_image_spec_is_refused_by_name(spec, message):
    with pytest.raises((TypeError, ValueError), match=message):
        preprocessing.check(spec)
    with pytest.raises(ValueError, match=r"describes inputs of shape \(4, 4, 1\), but the model takes \(5, 4, 1\)"):
        preprocessing.check(preprocessing.image_spec(4, 4, 1, False), (5, 4, 1))
