"""The held-out trust sets: reproducible, decodable uploads, kept apart from training's synthetic data."""

import io
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from gateway.preprocess import decode_image, enhanced
from tests.e2e.digit_strokes import CANVAS_PX
from tools import trust_sets
from tools.trust_sets import DIGIT, NON_DIGIT, SETS, SETS_BY_NAME
from training.characters import DIGIT_LIKE_CHARS

SKETCHPAD_SETS = ("scribbles", "shapes", "drawn_digits")
# The characters the brief names as digit-like, which no non-digit set may hold.
NAMED_DIGIT_LIKE = "OoDQlIi|ZzSsBbGgq"
SMALL_N = 12


@pytest.fixture(scope="module")
def made() -> dict:
    """Every set at a small size, seed 0, made once for the module."""
    return {trust_set.name: trust_set.make(SMALL_N, 0) for trust_set in SETS}


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("trust_set", SETS, ids=lambda s: s.name)
def test_set_is_the_same_for_the_same_seed(trust_set, made):
    again = trust_set.make(SMALL_N, 0)
    assert again.images == made[trust_set.name].images
    if again.labels is not None:
        assert np.array_equal(again.labels, made[trust_set.name].labels)


@pytest.mark.parametrize("trust_set", SETS, ids=lambda s: s.name)
def test_set_differs_for_another_seed(trust_set, made):
    assert trust_set.make(SMALL_N, 1).images != made[trust_set.name].images


@pytest.mark.parametrize("trust_set", SETS, ids=lambda s: s.name)
def test_every_upload_decodes_and_has_ink(trust_set, made):
    samples = made[trust_set.name]
    assert len(samples.images) == SMALL_N
    for data in samples.images:
        image = _decoded(data)
        assert image.format == "PNG" or (trust_set.name == "hard_jpeg" and image.format == "JPEG")
        pixels = np.asarray(image.convert("RGBA"), np.int16)
        assert pixels.reshape(-1, 4).std(axis=0).max() > 0, "a uniform image"


@pytest.mark.parametrize("trust_set", SETS, ids=lambda s: s.name)
def test_labels_and_kinds_match_the_set(trust_set, made):
    samples = made[trust_set.name]
    if trust_set.kind == DIGIT:
        assert samples.labels is not None and len(samples.labels) == SMALL_N
        assert set(samples.labels.tolist()) <= set(range(10))
    else:
        assert trust_set.kind == NON_DIGIT and samples.labels is None
        assert samples.kinds is not None and len(samples.kinds) == SMALL_N


@pytest.mark.parametrize("name", ["drawn_digits", "printed_digits"])
def test_made_digits_are_balanced(name):
    labels = SETS_BY_NAME[name].make(40, 3).labels
    assert np.bincount(labels, minlength=10).tolist() == [4] * 10


@pytest.mark.parametrize("name", SKETCHPAD_SETS)
def test_sketchpad_sets_are_black_ink_on_the_ui_transparent_canvas(name, made):
    for data in made[name].images:
        pixels = np.asarray(_decoded(data))
        assert pixels.shape == (CANVAS_PX, CANVAS_PX, 4)
        assert pixels[..., 3].min() == 0 and pixels[..., 3].max() == 255
        assert pixels[..., :3].max() == 0


@pytest.mark.parametrize(
    "name", ["letters", "symbols", "scribbles", "shapes", "photo_crops", "printed_digits"]
)
def test_uploads_are_full_size_not_model_inputs(name, made):
    for data in made[name].images:
        assert max(_decoded(data).size) >= 28
    assert any(max(_decoded(data).size) > 28 for data in made[name].images)


@pytest.mark.parametrize("name", ["drawn_digits", "printed_digits"])
def test_digit_uploads_survive_the_gateway_preprocessing(name, made):
    for data in made[name].images:
        image = enhanced(decode_image(data, max_pixels=CANVAS_PX * CANVAS_PX * 4))
        assert image.shape == (28, 28) and image.max() > 0.5


def test_mnist_test_is_all_ten_thousand_in_order_by_default():
    from training.dataset import DEFAULT_DATA_DIR, load_mnist

    _, test = load_mnist(trust_sets.REPO_ROOT / DEFAULT_DATA_DIR)
    mnist = SETS_BY_NAME["mnist_test"]
    samples = mnist.make(mnist.n, 0)
    assert len(samples.images) == 10_000
    assert np.array_equal(samples.labels, test.labels)
    assert np.array_equal(np.asarray(_decoded(samples.images[123])), test.images[123])


def test_hard_variants_are_make_compare_s_minus_clean():
    from training.hard_variants import VARIANTS

    hard = {name.removeprefix("hard_") for name in SETS_BY_NAME if name.startswith("hard_")}
    assert hard == set(VARIANTS) - {"clean"}
    assert all(SETS_BY_NAME[f"hard_{name}"].target is None for name in hard)  # reported, not judged


def test_non_digit_characters_exclude_digit_like_ones():
    characters = trust_sets.LETTERS + trust_sets.SYMBOLS
    assert set(NAMED_DIGIT_LIKE) <= set(DIGIT_LIKE_CHARS)
    assert not set(characters) & set(DIGIT_LIKE_CHARS)
    assert not [ch for ch in characters if ch.isnumeric() or unicodedata.category(ch) == "Nd"]
    assert len(set(characters)) == len(characters)


def test_every_character_has_a_glyph_in_every_font():
    # A missing glyph renders as the .notdef box, which is a 0.
    characters = trust_sets.LETTERS + trust_sets.SYMBOLS + "0123456789"
    for font in trust_sets.trust_fonts():
        cmap = TTFont(font).getBestCmap()
        assert [ch for ch in characters if ord(ch) not in cmap] == [], font.name


def test_fonts_are_liberation_only():
    fonts = trust_sets.trust_fonts()
    assert len(fonts) >= 4
    assert all(font.parent == trust_sets.FONT_DIR and font.name.startswith("Liberation") for font in fonts)


def test_photos_exist_and_load():
    for photo in trust_sets.trust_photos():
        pixels = trust_sets.load_photo(photo)
        assert pixels.ndim == 3 and pixels.shape[2] == 3 and min(pixels.shape[:2]) >= 64, photo


def _resolved(paths) -> set[Path]:
    return {Path(path).resolve() for path in paths}


def test_fonts_photos_characters_and_seeds_are_disjoint_from_training():
    from training import synthetic

    assert not _resolved(trust_sets.trust_fonts()) & _resolved(synthetic.TRAINING_FONTS)
    trust_photos = trust_sets.trust_photos()
    assert not _resolved(trust_photos) & _resolved(synthetic.TRAINING_PHOTOS)
    assert not {p.name for p in trust_photos} & {Path(p).name for p in synthetic.TRAINING_PHOTOS}
    characters = trust_sets.LETTERS + trust_sets.SYMBOLS
    letters, symbols = synthetic.training_non_digit_chars()
    assert not set(characters.casefold()) & set((letters + symbols).casefold())
    assert trust_sets.TRUST_SEED_BASE != synthetic.SEED_BASE
