"""FID, KID, precision/recall, class balance and the mode-collapse alarm, on real digits and on noise."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import train_dcgan
from conftest import REPO


@pytest.fixture(scope="module")
def evaluator(mnist_test):
    classifier = train_dcgan.load_classifier()
    return train_dcgan.QualityEvaluator(classifier, mnist_test[0][:2000], samples=500, latent_dim=128, seed=0)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2000, 16)) @ rng.standard_normal((16, 16))
    assert abs(train_dcgan.frechet_distance(features, features)) < 1e-6
    distances = [train_dcgan.frechet_distance(features, features + rng.standard_normal(features.shape) * s)
                 for s in (0.1, 0.5, 2.0)]
    assert distances[0] < distances[1] < distances[2]


def test_kid_and_precision_recall_of_a_set_with_itself():
    features = np.random.default_rng(1).standard_normal((600, 8)).astype(np.float32)
    assert abs(train_dcgan.kernel_distance(features, features, subsets=5, subset_size=300)) < 0.05
    assert train_dcgan.precision_recall(features, features) == (1.0, 1.0)


def test_kid_on_sets_no_larger_than_a_subset_is_the_hand_computed_mmd():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)) + 0.5

    def kernel(x, y):
        return (np.dot(x, y) / 3 + 1) ** 3

    within_a = sum(kernel(a[i], a[j]) for i in range(4) for j in range(4) if i != j) / (4 * 3)
    b4 = b[:4]  # a subset of the smaller set's size from each; with 4 and 5 points, subsets are drawn
    within_b = sum(kernel(b4[i], b4[j]) for i in range(4) for j in range(4) if i != j) / (4 * 3)
    across = np.mean([kernel(x, y) for x in a for y in b4])
    by_hand = within_a + within_b - 2 * across
    # Both sets of 4: the whole sets are the one subset, and 50 "subsets" would only repeat it.
    assert train_dcgan.kernel_distance(a, b4, subsets=50, subset_size=1000) == pytest.approx(by_hand, rel=1e-9)
    assert train_dcgan.kernel_distance(a, b4, subsets=1, subset_size=4) == pytest.approx(by_hand, rel=1e-9)


def test_precision_and_recall_on_points_counted_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]], np.float32)  # 1-NN radius of every real point: 1
    fake = np.array([[0.5], [10.0]], np.float32)  # 0.5 is within 1 of a real point; 10 is not
    # Each fake point's 1-NN radius is 9.5 (the other fake point), so every real point is within a fake ball.
    assert train_dcgan.precision_recall(real, fake, k=1) == (0.5, 1.0)
    # k=2: real radii 2, 1, 1, 1, 2. Fake 6.5 is 2.5 from 4 (outside); its own radius is 3 (to 9.5), which
    # reaches real 4 only: precision 0, recall 1/5.
    assert train_dcgan.precision_recall(real, np.array([[6.5], [9.0], [9.5]], np.float32), k=2) == \
        pytest.approx((0.0, 0.2))
    # Fake 5.5 is 1.5 from 4 (inside its radius 2); its radius 4 reaches reals 2, 3 and 4: precision 1/3, recall 3/5.
    assert train_dcgan.precision_recall(real, np.array([[5.5], [9.0], [9.5]], np.float32), k=2) == \
        pytest.approx((1 / 3, 0.6))


def test_images_that_are_not_digits_get_no_class_metrics_and_no_alarm(mnist_test):
    evaluator = train_dcgan.QualityEvaluator(train_dcgan.load_classifier(), mnist_test[0][:500], samples=200,
                                             latent_dim=128, seed=0, digits=None)
    sevens = mnist_test[0][mnist_test[1] == 7][:200]  # one class only: would raise the alarm if read as digits
    metrics = evaluator.evaluate_images(sevens)
    assert set(metrics) == {"fid", "kid", "precision", "recall"}
    assert train_dcgan.mode_collapse_warnings(metrics, None) == []
    assert "class entropy" not in train_dcgan.format_metrics(metrics)


def test_one_repeated_class_has_low_entropy_and_raises_the_alarm():
    probabilities = np.eye(10)[[3] * 95 + [1] * 5]
    balance = train_dcgan.class_balance(probabilities)
    assert balance["class_entropy"] < 0.5 and balance["min_class_share"] == 0.0
    warnings = train_dcgan.mode_collapse_warnings(balance, None)
    assert warnings and "0, 2, 4, 5, 6, 7, 8, 9" in warnings[0]


def test_balanced_classes_raise_no_alarm_but_a_sharp_entropy_drop_does():
    balanced = train_dcgan.class_balance(np.eye(10)[np.arange(1000) % 10])
    assert balanced["class_entropy"] == pytest.approx(np.log2(10))
    assert train_dcgan.mode_collapse_warnings(balanced, None) == []
    skewed = train_dcgan.class_balance(np.eye(10)[np.r_[np.arange(500) % 10, np.zeros(500, int)]])
    assert skewed["min_class_share"] > train_dcgan.MIN_CLASS_SHARE_ALARM
    assert any("entropy fell" in w for w in train_dcgan.mode_collapse_warnings(skewed, balanced))


def test_real_digits_beat_noise_on_every_measure(evaluator, mnist_train):
    real = evaluator.evaluate_images(mnist_train[0][:500])
    noise = evaluator.evaluate_images(np.random.default_rng(0).random((500, 28, 28, 1), dtype=np.float32))
    assert real["fid"] < noise["fid"] and real["kid"] < noise["kid"]
    assert real["recall"] > noise["recall"]
    # Precision cannot tell noise from digits in this feature space (noise lands among faint real digits, whose
    # k-NN balls are wide); it does tell digits moved off the real digits' manifold.
    shifted = evaluator.evaluate_images(np.roll(mnist_train[0][:500], 4, axis=2))
    assert real["precision"] > shifted["precision"] + 0.3
    assert real["class_entropy"] > noise["class_entropy"] and real["min_class_share"] > noise["min_class_share"]
    assert real["mean_confidence"] > noise["mean_confidence"]
    assert train_dcgan.mode_collapse_warnings(real, None) == []


def test_the_evaluators_kept_reference_radii_give_what_fresh_ones_give(evaluator, mnist_train):
    """The evaluator computes the real digits' 3-NN radii once; its precision and recall must equal the ones
    computed from scratch."""
    images = np.roll(mnist_train[0][:500], 2, axis=1)  # digits a little off the real manifold
    features, _ = evaluator.features_and_probabilities(images)
    kept = evaluator.evaluate_images(images)
    assert (kept["precision"], kept["recall"]) == train_dcgan.precision_recall(evaluator.reference_features, features)
    assert 0 < kept["precision"] < 1


def test_the_committed_classifier_matches_its_card_and_reads_real_digits(mnist_test):
    classifier = train_dcgan.load_classifier()
    with open(train_dcgan.CLASSIFIER_PATH + ".json") as file:
        card = json.load(file)
    assert train_dcgan.weights_fingerprint(classifier) == card["fingerprint"]
    images, labels = mnist_test
    accuracy = (classifier.predict(images[:2000], verbose=0).argmax(1) == labels[:2000]).mean()
    assert accuracy > 0.98 and card["test_accuracy"] > 0.99


def test_a_changed_classifier_is_refused(tmp_path):
    path = str(tmp_path / "mnist_classifier.weights.h5")
    shutil.copy(train_dcgan.CLASSIFIER_PATH, path)
    with open(train_dcgan.CLASSIFIER_PATH + ".json") as file:
        card = json.load(file)
    with open(path + ".json", "w") as file:
        json.dump(dict(card, fingerprint="0" * 16), file)
    with pytest.raises(train_dcgan.FixableError, match="does not match its fingerprint"):
        train_dcgan.load_classifier(path)
    os.remove(path + ".json")
    with pytest.raises(train_dcgan.FixableError, match="could not be loaded"):
        train_dcgan.load_classifier(path)


CLASSIFIER_TWICE = r"""
import sys
sys.path.insert(0, sys.argv[1])
import train_dcgan
from tools.train_classifier import save_classifier, train_classifier
train, test = (train_dcgan.load_digits("auto", split) for split in ("train", "test"))
data = (train[0][:512], train[1][:512], test[0][:256], test[1][:256])
first, accuracy = train_classifier(*data, epochs=1)
second, _ = train_classifier(*data, epochs=1)
card = save_classifier(first, accuracy, sys.argv[2])
print(train_dcgan.weights_fingerprint(first), train_dcgan.weights_fingerprint(second), card["fingerprint"],
      train_dcgan.weights_fingerprint(train_dcgan.load_classifier(sys.argv[2])))
"""


def test_classifier_training_is_deterministic_and_round_trips(tmp_path):
    # In a process of its own: train_classifier turns on TensorFlow's op determinism, which has no public off
    # switch, and the other tests should run as users do.
    result = subprocess.run([sys.executable, "-c", CLASSIFIER_TWICE, REPO, str(tmp_path / "classifier.weights.h5")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second, card, reloaded = result.stdout.split()[-4:]
    assert first == second == card == reloaded


def test_fid_stays_finite_for_singular_covariances_and_refuses_nan():
    rng = np.random.default_rng(0)
    real = np.maximum(rng.standard_normal((500, 128)), 0)
    real[:, :40] = 0  # ReLU units that never fire
    one_digit = np.tile(real[:1], (500, 1))  # a collapsed generator: every sample alike
    distance = train_dcgan.frechet_distance(real, one_digit)
    assert np.isfinite(distance) and distance > train_dcgan.frechet_distance(real, real[::-1]) + 10
    with pytest.raises(train_dcgan.TrainingDivergedError, match="NaN or infinite"):
        train_dcgan.frechet_distance(real, np.full_like(real, np.nan))
