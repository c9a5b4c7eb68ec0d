"""NOISE_CLASS: a generator of noise alone whose noise picks each digit's class, trained as the conditional one."""
import os
import shutil

import numpy as np
import pytest

import train_dcgan
from conftest import run_main, use_saved_generator_without_the_script

QUICK = ["--max_train_images", "320", "--steps_per_execution", "5", "--grid_rows", "4", "--metrics_every", "0"]


def test_noise_for_classes_moves_the_largest_component_to_the_asked_class_and_nothing_else():
    noise = train_dcgan.fixed_noise(0, 2000, 128)
    asked = np.arange(2000) % 10
    arranged = np.asarray(train_dcgan.noise_for_classes(noise, asked, 10))
    assert (arranged[:, :10].argmax(1) == asked).all()
    np.testing.assert_array_equal(np.sort(arranged[:, :10], 1), np.sort(noise[:, :10], 1))  # a swap per row
    np.testing.assert_array_equal(arranged[:, 10:], noise[:, 10:])
    already = noise[:, :10].argmax(1)
    np.testing.assert_array_equal(np.asarray(train_dcgan.noise_for_classes(noise, already, 10)), noise)


def test_the_generator_takes_noise_alone_and_reads_its_class_from_the_noise():
    generator = train_dcgan.build_generator(128, 16, classes=train_dcgan.GeneratorClasses(10, from_noise=True))
    assert len(generator.inputs) == 1 and train_dcgan.generator_classes(generator) == (10, True)
    noise = train_dcgan.fixed_noise(1, 1000, 128)
    one_hot = np.asarray(train_dcgan.keras.Model(generator.inputs[0], generator.get_layer("noise_class").output)(
        noise))
    assert (one_hot.argmax(1) == noise[:, :10].argmax(1)).all() and np.median(one_hot.max(1)) > 0.999
    # The class changes the digit: the same noise with another class draws something else.
    sevens, ones = (train_dcgan.sample(generator, noise[:8], np.full(8, digit)) for digit in (7, 1))
    assert np.abs(sevens - ones).max() > 1e-4


def test_batches_with_classes_are_ordered_by_class_and_each_digit_keeps_its_class(small_digits):
    images, labels = small_digits
    index_of = {image.tobytes(): index for index, image in enumerate(images)}
    dataset = train_dcgan.make_dataset(images, 32, 0, 128, labels.astype("int32"))
    epochs = []
    for _ in range(2):
        order = []
        for batch_images, _, batch_labels in dataset:
            batch_labels = np.asarray(batch_labels)
            assert (np.diff(batch_labels) >= 0).all()  # ordered by class, so D_GROUP_STD's groups hold one class
            indices = [index_of[image.tobytes()] for image in np.asarray(batch_images)]
            np.testing.assert_array_equal(labels[indices], batch_labels)
            order += indices
        assert len(order) == len(set(order)) == 288  # nine whole batches of 32, no digit twice
        epochs.append(order)
    assert epochs[0] != epochs[1]  # still reshuffled every epoch


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("noise_class") / "out")
    code, printed, err = run_main("--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, printed[-3000:] + err[-3000:]
    return out, printed


def test_the_default_run_on_mnist_draws_classes_from_noise(default_run, tmp_path):
    out, log = default_run
    assert "each generated digit's class picked by its noise" in log and "class head names" not in log
    last = use_saved_generator_without_the_script(
        os.path.join(out, "generator.keras"), "print(g.predict(np.random.normal(size=(3, 128)), verbose=0).shape)\n",
        str(tmp_path))
    assert last == "(3, 28, 28, 1)"


def test_generate_digit_works_on_the_default_generator(default_run):
    out, _ = default_run
    code, printed, err = run_main("--generate", "12", "--digit", "7", "--output_dir", out)
    assert code == 0, err[-2000:]
    labels = np.load(os.path.join(out, "generated", "labels.npy"))
    assert (labels == 7).all() and "of class 7" in printed


def test_a_noise_class_run_is_not_continued_without_it(default_run, tmp_path):
    out = str(tmp_path / "copy")
    shutil.copytree(default_run[0], out)
    code, _, err = run_main("--epochs", "2", *QUICK, "--noise_class", "0", "--output_dir", out)
    assert code == 2 and "NOISE_CLASS was True, now False" in err


def test_unlabelled_data_trains_without_it(tmp_path, small_digits):
    folder = tmp_path / "plain"
    folder.mkdir()
    for index, image in enumerate(small_digits[0][:128]):
        train_dcgan.Image.fromarray(np.rint(image[..., 0] * 255).astype(np.uint8)).save(folder / f"{index}.png")
    code, printed, err = run_main("--data", str(folder), "--epochs", "1", "--steps_per_execution", "2",
                                  "--grid_rows", "4", "--metrics_every", "0", "--output_dir", str(tmp_path / "out"))
    assert code == 0, err[-3000:]
    assert "no classes (noise class off), since the data has no labels" in printed
    generator = train_dcgan.keras.models.load_model(str(tmp_path / "out" / "generator.keras"))
    assert train_dcgan.generator_classes(generator) == train_dcgan.NO_CLASSES


def test_noise_shorter_than_the_classes_is_a_clear_error(tmp_path):
    code, _, err = run_main("--epochs", "1", *QUICK, "--latent_dim", "8", "--output_dir", str(tmp_path / "out"))
    assert code == 2 and "--latent_dim 8 is shorter than the 10 classes" in err
