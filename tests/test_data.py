"""Every data source gives float32 digits (N, 28, 28, 1) in [0, 1]; every broken file gives a named error."""
import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import train_dcgan
from train_dcgan import FixableError


def as_uint8(images):
    return np.rint(images[..., 0] * 255).astype(np.uint8)


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def assert_digits(images, count):
    assert images.shape == (count, 28, 28, 1)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_shipped_mnist_is_the_60000_training_and_10000_test_digits(mnist_train, mnist_test):
    images, labels = mnist_train
    assert_digits(images, 60000)
    assert images.max() == 1.0  # 255 maps to exactly 1
    assert list(labels[:5]) == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert_digits(mnist_test[0], 10000)
    assert list(mnist_test[1][:5]) == [7, 2, 1, 0, 4]


def test_npz_in_keras_layout(tmp_path, small_digits):
    images, labels = small_digits
    path = str(tmp_path / "mnist.npz")
    np.savez(path, x_train=as_uint8(images), y_train=labels, x_test=as_uint8(images[:10]), y_test=labels[:10])
    loaded, loaded_labels, source = train_dcgan.load_digits(path)
    assert_digits(loaded, 300)
    np.testing.assert_allclose(loaded, images, atol=1e-6)
    assert (loaded_labels == labels).all() and path in source


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_folder_plain_and_gzipped(tmp_path, small_digits, suffix):
    images, labels = small_digits
    write_idx(str(tmp_path / f"train-images-idx3-ubyte{suffix}"), as_uint8(images))
    write_idx(str(tmp_path / f"train-labels-idx1-ubyte{suffix}"), labels)
    loaded, loaded_labels, _ = train_dcgan.load_digits(str(tmp_path))
    assert_digits(loaded, 300)
    np.testing.assert_allclose(loaded, images, atol=1e-6)
    assert (loaded_labels == labels).all()


def test_image_folder_of_mixed_sizes_and_modes_skips_non_images(tmp_path, small_digits, capsys):
    images, _ = small_digits
    digit = as_uint8(images[:1])[0]
    Image.fromarray(digit).save(tmp_path / "a_gray.png")
    Image.fromarray(digit).resize((64, 64)).convert("RGB").save(tmp_path / "b_rgb_large.jpg")
    Image.fromarray(255 - digit).resize((40, 30)).convert("RGBA").save(tmp_path / "c_dark_on_white.png")
    Image.fromarray(digit).convert("P").save(tmp_path / "d_palette.gif")
    (tmp_path / "notes.txt").write_text("not an image")
    loaded, labels, _ = train_dcgan.load_digits(str(tmp_path))
    assert_digits(loaded, 4)
    assert labels is None
    assert "notes.txt" in capsys.readouterr().out  # the skipped file is named
    # Dark-on-white images are inverted to MNIST's white-on-black: every digit has a dark border.
    assert all(image[0].mean() < 0.2 for image in loaded)
    np.testing.assert_allclose(loaded[0], images[0], atol=1 / 255 + 1e-6)


def test_empty_image_folder_is_a_named_error(tmp_path):
    (tmp_path / "readme.md").write_text("no digits here")
    with pytest.raises(FixableError, match="no readable images"):
        train_dcgan.load_digits(str(tmp_path))


def test_truncated_npz_names_the_file(tmp_path, small_digits):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=as_uint8(small_digits[0]), y_train=small_digits[1])
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(FixableError, match="mnist.npz"):
        train_dcgan.load_digits(str(path))


def test_wrong_shaped_npz_names_the_file(tmp_path):
    path = tmp_path / "wrong.npz"
    np.savez(path, x_train=np.zeros((5, 32, 32), np.uint8), y_train=np.zeros(5))
    with pytest.raises(FixableError, match="wrong.npz.*shape"):
        train_dcgan.load_digits(str(path))


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_idx_names_the_file(tmp_path, small_digits, suffix):
    images, labels = small_digits
    write_idx(str(tmp_path / f"train-images-idx3-ubyte{suffix}"), as_uint8(images))
    write_idx(str(tmp_path / f"train-labels-idx1-ubyte{suffix}"), labels)
    images_path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    images_path.write_bytes(images_path.read_bytes()[:5000])
    with pytest.raises(FixableError, match=f"train-images-idx3-ubyte{suffix}"):
        train_dcgan.load_digits(str(tmp_path))


def test_missing_shipped_mnist_without_keras_download_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(train_dcgan, "MNIST_PATH", str(tmp_path / "gone.npz"))

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(train_dcgan.keras.datasets.mnist, "load_data", offline)
    with pytest.raises(FixableError, match="git checkout -- data"):
        train_dcgan.load_digits("auto")


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_as_npz_raise_only_our_error(tmp_path, data):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    with pytest.raises(FixableError):
        train_dcgan.load_digits(str(path))


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["", ".gz"]), st.booleans())
def test_random_bytes_as_idx_raise_only_our_error(tmp_path, data, suffix, compress):
    folder = tmp_path / "idx"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    payload = gzip.compress(data) if suffix == ".gz" and compress else data
    (folder / f"train-images-idx3-ubyte{suffix}").write_bytes(payload)
    (folder / f"train-labels-idx1-ubyte{suffix}").write_bytes(payload)
    with pytest.raises(FixableError):
        train_dcgan.load_digits(str(folder))


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_as_images_raise_only_our_error_or_load(tmp_path, data):
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    (folder / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    try:
        images, _, _ = train_dcgan.load_digits(str(folder))
    except FixableError as error:
        assert "no readable images" in str(error)
    else:
        assert_digits(images, 1)


def test_black_ink_on_transparent_becomes_a_white_digit_on_black(tmp_path, small_digits):
    ink = as_uint8(small_digits[0][:1])[0]
    drawing = np.zeros((28, 28, 4), np.uint8)  # black strokes, opaque only where the ink is
    drawing[..., 3] = ink
    folder = tmp_path / "drawings"
    folder.mkdir()
    Image.fromarray(drawing, "RGBA").save(folder / "seven.png")
    images, _ = train_dcgan.load_image_folder(str(folder))
    assert np.corrcoef(images[0, ..., 0].ravel(), ink.ravel())[0, 1] > 0.95  # the strokes, not a black square


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path, small_digits):
    digit = as_uint8(small_digits[0][:1])[0]
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(digit.astype(np.uint16) * 257).save(folder / "digit16.png")  # 16-bit grayscale PNG
    images, _ = train_dcgan.load_image_folder(str(folder))
    assert np.abs(as_uint8(images)[0].astype(int) - train_dcgan.grayscale_pixels(Image.fromarray(digit))).max() <= 2


def test_max_train_images_samples_across_class_folders(tmp_path, small_digits):
    images, labels = small_digits
    for digit in range(10):
        (tmp_path / "classes" / str(digit)).mkdir(parents=True)
    for index, (image, label) in enumerate(zip(images[:200], labels[:200])):
        Image.fromarray(as_uint8(image[None])[0]).save(tmp_path / "classes" / str(label) / f"{index}.png")
    picked = train_dcgan.load_training_data(str(tmp_path / "classes"), seed=0, max_train_images=40).images
    assert picked.shape == (40, 28, 28, 1)
    folder_order = train_dcgan.load_image_folder(str(tmp_path / "classes"))[0]
    zeros = folder_order[:int((labels[:200] == 0).sum())]
    from_zeros = sum(any(np.array_equal(p, z) for z in zeros) for p in picked)
    assert from_zeros < 20  # the first 40 sorted files would all be zeros


def test_a_symlink_loop_does_not_repeat_images(tmp_path, small_digits):
    folder = tmp_path / "digits"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(as_uint8(small_digits[0][index:index + 1])[0]).save(folder / f"{index}.png")
    os.symlink(folder, folder / "loop")  # a link back to the folder itself
    images, _ = train_dcgan.load_image_folder(str(folder))
    assert len(images) == 3


def test_a_corrupt_stream_inside_gz_is_our_error(tmp_path, small_digits):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(str(path), as_uint8(small_digits[0][:50]))
    raw = bytearray(path.read_bytes())
    raw[40:80] = b"\xff" * 40  # damage the deflate stream, keep the gzip header
    path.write_bytes(bytes(raw))
    with pytest.raises(FixableError, match="train-images-idx3-ubyte.gz cannot be read"):
        train_dcgan.read_idx(str(path))


@pytest.mark.parametrize("shape", ["column", "one_hot"])
def test_npz_labels_as_a_column_or_one_hot_become_one_class_per_digit(tmp_path, small_digits, shape):
    images, labels = small_digits
    stored = labels[:, None] if shape == "column" else np.eye(10, dtype=np.uint8)[labels]
    path = str(tmp_path / "mine.npz")
    np.savez(path, x_train=as_uint8(images), y_train=stored)
    loaded_labels = train_dcgan.load_digits(path)[1]
    assert loaded_labels.shape == (300,) and (loaded_labels == labels).all()
    assert train_dcgan.encode_labels(loaded_labels)[1] == [str(digit) for digit in range(10)]


def test_npz_labels_of_another_shape_are_a_named_error(tmp_path, small_digits):
    path = str(tmp_path / "mine.npz")
    np.savez(path, x_train=as_uint8(small_digits[0]), y_train=np.ones((300, 2)) * 0.5)
    with pytest.raises(FixableError, match=r"y_train holds labels of shape \(300, 2\).*one per image: whole numbers or names"):
        train_dcgan.load_digits(path)


def test_float_images_in_the_unit_range_keep_their_ink(tmp_path, small_digits):
    digit = small_digits[0][0, ..., 0]
    Image.fromarray(digit.astype(np.float32), mode="F").save(tmp_path / "digit.tiff")
    loaded = train_dcgan.load_image_folder(str(tmp_path))[0][0, ..., 0]
    assert loaded.max() > 0.9 and np.abs(loaded - digit).max() < 0.02


def test_data_without_a_test_split_holds_out_a_tenth_for_the_metrics(tmp_path, small_digits):
    images, labels = small_digits
    path = str(tmp_path / "train_only.npz")
    np.savez(path, x_train=as_uint8(images), y_train=labels)
    assert train_dcgan.load_digits(path, "test") is None
    data = train_dcgan.load_training_data(path, seed=3)
    assert len(data.images) == 270 and len(data.reference) == 30
    trained = {image.tobytes() for image in data.images}
    assert not any(image.tobytes() in trained for image in data.reference)  # never trained on
    assert "30 images held out" in data.reference_name
    with_test = str(tmp_path / "with_test.npz")
    np.savez(with_test, x_train=as_uint8(images), y_train=labels, x_test=as_uint8(images[:50]), y_test=labels[:50])
    data = train_dcgan.load_training_data(with_test, seed=3)
    assert len(data.images) == 300 and len(data.reference) == 50  # its own test split instead
