"""training/synthetic.py: shapes, ranges, determinism, balance, disjointness facts and honest plausibility."""

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from training import synthetic
from training.synthetic import (
    NON_DIGIT_SHARES,
    SEED_BASE,
    TRAINING_FONTS,
    TRAINING_PHOTOS,
    draw_strokes,
    drawn_digits,
    gateway_view,
    is_upright_bar,
    non_digit_kind,
    non_digits,
    printed_digits,
    sketchpad_image,
)

pytestmark = pytest.mark.unit

DIGIT_SETS = {"printed": printed_digits, "drawn": drawn_digits}


def _check_images(images: np.ndarray, count: int) -> None:
    assert images.shape == (count, 28, 28)
    assert images.dtype == np.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_non_digits_are_float32_28x28_in_unit_range():
    _check_images(non_digits(37, seed=1), 37)


@pytest.mark.parametrize("name", DIGIT_SETS)
def test_digit_sets_are_float32_28x28_with_int64_labels(name):
    images, labels = DIGIT_SETS[name](23, seed=1)
    _check_images(images, 23)
    assert labels.shape == (23,) and labels.dtype == np.int64
    assert set(labels.tolist()) <= set(range(10))


@pytest.mark.parametrize("name", DIGIT_SETS)
def test_digit_labels_are_balanced(name):
    _, labels = DIGIT_SETS[name](43, seed=2)
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 43 and counts.min() == 4 and counts.max() == 5


def test_non_digits_mix_follows_the_shares():
    counts = {kind: 0 for kind in NON_DIGIT_SHARES}
    # Each kind's stream is independent of the mix, so the mix is the kinds' images, shuffled.
    mixed = non_digits(40, seed=4)
    for kind, share in NON_DIGIT_SHARES.items():
        part = non_digit_kind(kind, round(40 * share), seed=4)
        for image in part:
            counts[kind] += int(np.any(np.all(mixed == image, axis=(1, 2))))
    assert counts == {kind: round(40 * share) for kind, share in NON_DIGIT_SHARES.items()}
    assert abs(sum(NON_DIGIT_SHARES.values()) - 1.0) < 1e-9


def test_same_seed_gives_the_same_images():
    np.testing.assert_array_equal(non_digits(15, seed=7), non_digits(15, seed=7))
    for generate in DIGIT_SETS.values():
        first, second = generate(15, seed=7), generate(15, seed=7)
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_array_equal(first[1], second[1])


def test_different_seeds_give_different_images():
    assert not np.array_equal(non_digits(15, seed=7), non_digits(15, seed=8))
    for generate in DIGIT_SETS.values():
        assert not np.array_equal(generate(15, seed=7)[0], generate(15, seed=8)[0])


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        non_digits(3, seed=-1)


def _assert_inked(images: np.ndarray) -> None:
    """Every image has full-strength ink over a real area: nothing blank, no lone speck."""
    peaks = images.max(axis=(1, 2))
    inked = (images >= 0.3).sum(axis=(1, 2))
    assert peaks.min() >= 0.9, f"faint image: peak {peaks.min():.2f}"
    assert inked.min() >= 12, f"near-blank image: {inked.min()} inked pixels"


@pytest.mark.parametrize("kind", NON_DIGIT_SHARES)
def test_every_non_digit_has_ink(kind):
    _assert_inked(non_digit_kind(kind, 30, seed=3))


@pytest.mark.parametrize("name", DIGIT_SETS)
def test_every_digit_has_ink(name):
    _assert_inked(DIGIT_SETS[name](30, seed=3)[0])


@pytest.mark.parametrize("name", DIGIT_SETS)
def test_digits_sit_in_the_mnist_frame(name):
    """The gateway's recipe: centre of mass near (14, 14), ink inside a 20 px box plus rounding."""
    images, _ = DIGIT_SETS[name](30, seed=5)
    rows, cols = np.indices((28, 28))
    for image in images:
        mass = image.sum()
        centre = ((rows * image).sum() / mass, (cols * image).sum() / mass)
        assert abs(centre[0] - 14) <= 1.5 and abs(centre[1] - 14) <= 1.5
        inked_rows = np.nonzero(image.max(axis=1) >= 0.3)[0]
        assert inked_rows.max() - inked_rows.min() + 1 <= 22


def test_fonts_are_dejavu_only():
    assert TRAINING_FONTS
    for path in TRAINING_FONTS:
        assert Path(path).is_file(), path
        family, _ = ImageFont.truetype(path, 20).getname()
        assert family.startswith("DejaVu"), (path, family)
        assert "Liberation" not in path


def test_photos_are_matplotlib_samples():
    assert len(TRAINING_PHOTOS) == 3
    for path in TRAINING_PHOTOS:
        assert Path(path).is_file(), path
        assert Path(path).parent.name == "sample_data"
        assert Path(path).name in (
            "grace_hopper.jpg",
            "Minduka_Present_Blue_Pack.png",
            "jacksboro_fault_dem.npz",
        )
        assert synthetic._photo(path).mode in ("RGB", "RGBA")


def test_non_digit_chars_exclude_digit_lookalikes():
    letters, symbols = synthetic.training_non_digit_chars()
    lookalikes = set("0123456789OoQDCc@lIij|![]{}Zz?Ss$§bG6TJBg9qa&uyЗзБбОоЧЈјƷʒ")
    assert not lookalikes & set(letters + symbols)
    assert len(set(letters + symbols)) == len(letters + symbols)


def test_non_digit_chars_are_many_letters_and_symbols():
    letters, symbols = synthetic.training_non_digit_chars()
    assert len(letters) >= 150 and len(symbols) >= 300  # the variety that makes unseen characters refusable
    assert set("AEFHKMNPRVWXЖШ") <= set(letters) and set("★♥+=~") <= set(symbols)
    assert all(unicodedata.category(ch).startswith("L") for ch in letters)
    assert not any(unicodedata.category(ch).startswith("L") for ch in symbols)


def test_every_non_digit_char_is_drawn_by_some_training_font():
    letters, symbols = synthetic.training_non_digit_chars()
    for char in letters + symbols:
        assert any(synthetic._has_glyph(path, char) for path in TRAINING_FONTS), char


def test_seed_base_is_a_plain_int():
    assert isinstance(SEED_BASE, int) and SEED_BASE > 0


def test_sketchpad_canvas_reads_as_black_on_white():
    """The "canvas" shortcut: the gateway reads a transparent RGBA canvas as black on white."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        side = int(rng.integers(112, 449))
        points = [rng.uniform(0.15, 0.85, (5, 2))]
        mask = draw_strokes(side, points, width=int(side * 0.08))
        on_canvas = gateway_view(sketchpad_image(mask))
        on_paper = gateway_view(Image.fromarray(255 - mask))
        assert on_canvas is not None and on_paper is not None
        np.testing.assert_allclose(on_canvas, on_paper, atol=1e-5)


def test_a_generator_the_gateway_always_refuses_fails_loudly(monkeypatch):
    blank = {"glyphs": lambda rng: Image.new("L", (112, 112), 255)}
    monkeypatch.setattr(synthetic, "NON_DIGIT_GENERATORS", blank)
    with pytest.raises(RuntimeError, match="refused too many synthetic glyphs: 0 of 2"):
        non_digit_kind("glyphs", 2, seed=0)


def test_gateway_view_drops_what_the_gateway_refuses():
    assert gateway_view(Image.new("L", (200, 200), 255)) is None


def test_upright_bar_is_flagged():
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 13:15] = 1.0
    assert is_upright_bar(bar)
    assert not is_upright_bar(bar.T)  # lying down is no 1
    assert not is_upright_bar(np.zeros((28, 28), np.float32))


@pytest.mark.parametrize("name", DIGIT_SETS)
def test_upright_bar_filter_flags_no_digit_but_a_one(name):
    """The non-digit filter removes 1-like images only, so it cannot be hiding other digit look-alikes."""
    images, labels = DIGIT_SETS[name](200, seed=6)
    flagged = {int(label) for image, label in zip(images, labels, strict=True) if is_upright_bar(image)}
    assert flagged <= {1}
    if name == "drawn":  # plain strokes of 1 are bars: the filter does look
        assert flagged == {1}


@pytest.mark.parametrize("kind", NON_DIGIT_SHARES)
def test_no_non_digit_is_an_upright_bar(kind):
    assert not any(is_upright_bar(image) for image in non_digit_kind(kind, 40, seed=9))


def test_cli_writes_one_contact_sheet_per_kind(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path), "--count", "10", "--seed", "1"]) == 0
    names = {path.name for path in tmp_path.glob("*.png")}
    expected = {f"non_digits_{kind}.png" for kind in NON_DIGIT_SHARES} | {
        "printed_digits.png",
        "drawn_digits.png",
    }
    assert names == expected
    with Image.open(tmp_path / "drawn_digits.png") as sheet:
        assert sheet.size[1] == 10 * (28 * 3 + 2)  # one row per digit
    assert "drawn_digits: 10 in" in capsys.readouterr().out


def test_cli_refuses_a_count_below_one(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--out", str(tmp_path), "--count", "0"])
    assert exit_info.value.code == 2


def test_fragments_are_like_no_training_digit_and_no_held_out_character():
    fragments = non_digit_kind("fragments", 60, seed=5)
    assert synthetic.likeness(fragments, synthetic.training_digit_rows()).max() < synthetic.MNIST_LIKENESS_MAX
    assert synthetic.likeness(fragments, synthetic.held_out_rows()).max() < synthetic.HELD_OUT_LIKENESS_MAX


def test_the_fragment_filters_bite():
    """Unfiltered, some pen strokes do look like a digit or a held-out character: the filters drop them."""
    rng = np.random.default_rng(0)
    views = np.array([gateway_view(synthetic._fragment_image(rng)) for _ in range(300)])
    views = views[[view is not None for view in views]].astype(np.float32)
    assert (synthetic.likeness(views, synthetic.training_digit_rows()) >= synthetic.MNIST_LIKENESS_MAX).any()
    assert (synthetic.likeness(views, synthetic.held_out_rows()) >= synthetic.HELD_OUT_LIKENESS_MAX).any()


def test_almost_every_validation_digit_has_a_training_digit_as_alike_as_the_cut():
    """The cut's meaning: a kept fragment is farther from every training digit than ~99 % of digits are."""
    from training.dataset import DEFAULT_DATA_DIR, load_mnist

    train, _ = load_mnist(DEFAULT_DATA_DIR)
    validation = train.images[:1000] / 255.0
    alike = synthetic.likeness(validation, synthetic.training_digit_rows()) >= synthetic.MNIST_LIKENESS_MAX
    assert alike.mean() >= 0.98
