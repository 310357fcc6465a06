"""Loading still images for evaluation: every PNG flavour becomes uint8 H×W×3 BGR; bad
files and folders are refused with one line naming them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from localsr_cam.capture.images import crop_even, list_images, load_image
from localsr_cam.errors import SourceError

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def colour() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)


def write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def assert_one_line_naming(exc: pytest.ExceptionInfo[SourceError], path: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert path.name in message


# -- list_images -------------------------------------------------------------------------


def test_list_images_sorted_images_only(tmp_path: Path, colour: np.ndarray) -> None:
    for name in ("b.png", "a.JPG", "c.bmp", ".hidden.png"):
        write(tmp_path / name, colour)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.bmp"]


@pytest.mark.parametrize("content", [[], ["readme.txt", "data.csv"]])
def test_folder_without_images_is_refused(tmp_path: Path, content: list[str]) -> None:
    for name in content:
        (tmp_path / name).write_text("x")
    with pytest.raises(SourceError, match="no images in") as exc:
        list_images(tmp_path)
    assert "\n" not in str(exc.value)


def test_missing_folder_or_a_file_is_refused(tmp_path: Path, colour: np.ndarray) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(SourceError, match="is not a folder"):
        list_images(write(tmp_path / "x.png", colour))


# -- load_image ---------------------------------------------------------------------------


def test_colour_png_round_trips(tmp_path: Path, colour: np.ndarray) -> None:
    image = load_image(write(tmp_path / "c.png", colour))
    assert image.dtype == np.uint8 and image.flags.c_contiguous
    np.testing.assert_array_equal(image, colour)


def test_grayscale_becomes_three_equal_channels(tmp_path: Path, colour: np.ndarray) -> None:
    gray = colour[:, :, 1]
    image = load_image(write(tmp_path / "g.png", gray))
    assert image.shape == (20, 24, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], gray)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_is_scaled_with_rounding(tmp_path: Path, colour: np.ndarray,
                                        channels: int) -> None:
    eight = colour[:, :, :channels].copy()
    sixteen = eight.astype(np.uint16) * 257  # exactly k/255 of full scale → k
    sixteen[0, 0] = 257 * 10 + 128  # 10.498 → 10
    sixteen[0, 1] = 257 * 10 + 129  # 10.502 → 11
    eight[0, 0], eight[0, 1] = 10, 11
    image = load_image(write(tmp_path / "s.png", np.squeeze(sixteen)))
    assert image.shape == (20, 24, 3)
    np.testing.assert_array_equal(image, np.broadcast_to(eight, (20, 24, 3)))


def test_alpha_is_composited_on_black(tmp_path: Path, colour: np.ndarray) -> None:
    alpha = np.zeros((20, 24), np.uint8)
    alpha[:, 8:16] = 128
    alpha[:, 16:] = 255
    bgra = np.dstack([colour, alpha])
    image = load_image(write(tmp_path / "a.png", bgra))
    assert image.shape == (20, 24, 3)
    assert not image[:, :8].any()
    np.testing.assert_array_equal(image[:, 16:], colour[:, 16:])
    expected = np.rint(colour[:, 8:16].astype(float) * 128 / 255).astype(np.uint8)
    np.testing.assert_array_equal(image[:, 8:16], expected)


def test_gray_with_alpha(tmp_path: Path, colour: np.ndarray) -> None:
    gray = colour[:, :, 0]
    alpha = np.full_like(gray, 255)
    alpha[:5] = 0
    PIL.fromarray(np.dstack([gray, alpha]), mode="LA").save(tmp_path / "la.png")
    image = load_image(tmp_path / "la.png")
    assert not image[:5].any()
    np.testing.assert_array_equal(image[5:, :, 2], gray[5:])


@pytest.mark.parametrize("transparent", [False, True])
def test_paletted_png_is_expanded(tmp_path: Path, colour: np.ndarray,
                                  transparent: bool) -> None:
    paletted = PIL.fromarray(colour[:, :, ::-1]).convert(
        "P", palette=PIL.Palette.ADAPTIVE, colors=16)
    path = tmp_path / "p.png"
    if transparent:
        paletted.save(path, transparency=0)
    else:
        paletted.save(path)
    expected = np.asarray(paletted.convert("RGB"))[:, :, ::-1].copy()
    if transparent:
        expected[np.asarray(paletted) == 0] = 0
    np.testing.assert_array_equal(load_image(path), expected)


def test_non_image_file_is_refused_naming_it(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.png"
    fake.write_text("this is not a PNG")
    with pytest.raises(SourceError) as exc:
        load_image(fake)
    assert_one_line_naming(exc, fake)


def test_truncated_and_empty_files_are_refused(tmp_path: Path, colour: np.ndarray) -> None:
    good = write(tmp_path / "good.png", np.tile(colour, (4, 4, 1)))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (cut, empty, tmp_path / "missing.png"):
        with pytest.raises(SourceError) as exc:
            load_image(path)
        assert_one_line_naming(exc, path)


def test_images_smaller_than_16x16_are_refused(tmp_path: Path, colour: np.ndarray) -> None:
    small = write(tmp_path / "small.png", colour[:15])
    with pytest.raises(SourceError, match="24×15") as exc:
        load_image(small)
    assert_one_line_naming(exc, small)
    assert load_image(write(tmp_path / "ok.png", colour[:16, :16])).shape == (16, 16, 3)


# -- crop_even -----------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(21, 33), (20, 33), (21, 32), (20, 32)])
def test_crop_even_drops_the_odd_row_and_column(height: int, width: int) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    cropped = crop_even(image)
    assert cropped.shape == (height // 2 * 2, width // 2 * 2, 3)
    assert np.shares_memory(cropped, image)


def test_a_div2k_folder_is_read_through_its_hr_subfolders(tmp_path) -> None:
    """The same images for eval and train: a folder with no images of its own but
    ``*_HR`` subfolders (DIV2K) lists those; other subfolders (the LR ones) are ignored."""
    import cv2

    image = np.full((20, 24, 3), 90, np.uint8)
    for folder, name in (("DIV2K_valid_HR", "0801.png"), ("DIV2K_train_HR", "0001.png"),
                         ("DIV2K_train_LR_bicubic", "0001x2.png")):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / name), image)
    assert [p.name for p in list_images(tmp_path)] == ["0001.png", "0801.png"]
    cv2.imwrite(str(tmp_path / "own.png"), image)  # images of its own win
    assert [p.name for p in list_images(tmp_path)] == ["own.png"]
