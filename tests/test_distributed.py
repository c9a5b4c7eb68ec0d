"""tf.distribute on our CPU: two mirrored logical devices, and two workers on 127.0.0.1."""
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO

# These tests are about the CPU devices; on a machine with GPUs, "mirrored" would mirror over those instead.
CPU_ONLY = dict(os.environ, CUDA_VISIBLE_DEVICES="")

MIRRORED_VS_SINGLE = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import keras
import train_dcgan

config = dict(train_dcgan.DEFAULT_CONFIG, DROPOUT=0.0, PRECISION="float32", STEPS_PER_EXECUTION=1)
images, labels, _ = train_dcgan.load_digits("auto")
images, labels = images[:256], labels[:256].astype("int32")
classes = train_dcgan.GeneratorClasses(int(sys.argv[2]), from_noise=False)  # 10: batches carry labels (R1 on)
config["R1_GAMMA"] = 1.0 if classes.count else 0.0

class StepLogs(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps = []
    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({name: float(value) for name, value in logs.items()})

def first_steps(strategy):
    keras.utils.set_random_seed(0)
    dcgan = train_dcgan.build_dcgan(config, strategy, classes)
    recorder = StepLogs()
    dataset = train_dcgan.make_dataset(images, 32, 0, config["LATENT_DIM"], labels if classes.count else None)
    dcgan.fit(dataset, epochs=1, steps_per_epoch=4,
              verbose=0, shuffle=False, callbacks=[recorder])
    return recorder.steps

mirrored = train_dcgan.make_strategy("mirrored")
print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "single": first_steps(tf.distribute.get_strategy()),
                  "mirrored": first_steps(mirrored)}))
"""


@pytest.mark.parametrize("classes", [0, 10], ids=["unconditional", "conditional"])
def test_mirrored_over_two_cpu_devices_matches_one_device(classes):
    result = subprocess.run([sys.executable, "-c", MIRRORED_VS_SINGLE, REPO, str(classes)], capture_output=True,
                            text=True, timeout=600, env=CPU_ONLY)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    assert runs["replicas"] == 2
    assert len(runs["single"]) == len(runs["mirrored"]) == 4
    for single, mirrored in zip(runs["single"], runs["mirrored"]):
        for name in ("d_loss", "g_loss", "d_real", "d_fake"):
            # Same global batch, same noise, normalisation within each digit: equal up to float round-off. A loss
            # logged per replica without undoing Keras' 1/N scaling would be off by half.
            assert mirrored[name] == pytest.approx(single[name], abs=1e-4), name


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_workers(output_dirs, *args, exit_code=0):
    """The same command on two workers on 127.0.0.1, worker i given output_dirs[i]; their (stdout, stderr)."""
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = dict(CPU_ONLY, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        command = [sys.executable, os.path.join(REPO, "train_dcgan.py"), "--strategy", "multiworker",
                   "--max_train_images", "256", "--metrics_every", "0", "--output_dir", output_dirs[index], *args]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    try:
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == exit_code, stdout[-2000:] + stderr[-3000:]
    return outputs


def test_two_workers_train_identically_and_only_the_chief_writes(tmp_path):
    outputs = run_two_workers([str(tmp_path / f"worker{index}") for index in range(2)], "--epochs", "2")
    fingerprints = [line for stdout, _ in outputs for line in stdout.splitlines()
                    if line.startswith("generator weights fingerprint:")]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]
    assert "2 replicas" in outputs[0][0]
    chief_files = set(os.listdir(tmp_path / "worker0"))
    assert {"generator.keras", "generated_images.gif", "history.csv", "samples"} <= chief_files
    assert not (tmp_path / "worker1").exists()
    # Continued with OUTPUT_DIRs that are not one shared folder, the chief would resume at epoch 2 and the other
    # worker start afresh, and all-reduce the gradients of different models: both stop with the same clear error.
    outputs = run_two_workers([str(tmp_path / f"worker{index}") for index in range(2)], "--epochs", "3",
                              exit_code=2)
    for _, stderr in outputs:
        assert "do not agree on the epoch to resume from" in stderr and "shared" in stderr


def test_two_workers_sharing_one_output_dir_continue_and_restart_together(tmp_path):
    shared = str(tmp_path / "shared")
    run_two_workers([shared, shared], "--epochs", "1")
    outputs = run_two_workers([shared, shared], "--epochs", "2")
    for stdout, _ in outputs:
        assert "continuing the finished run" in stdout and "after epoch 1" in stdout
    fingerprints = {line for stdout, _ in outputs for line in stdout.splitlines() if "fingerprint" in line}
    assert len(fingerprints) == 1  # both workers continued from the same weights and stayed in step
    with open(os.path.join(shared, "history.csv")) as file:
        assert [line.split(",")[0] for line in file.read().split()[1:]] == ["1", "2"]
    outputs = run_two_workers([shared, shared], "--epochs", "2")  # the finished run again: nothing to do, on both
    assert all("has its 2 epochs: nothing to train" in stdout for stdout, _ in outputs)
    outputs = run_two_workers([shared, shared], "--epochs", "1", "--restart")
    assert all("training from scratch" in stdout and "resuming" not in stdout and "continuing" not in stdout
               for stdout, _ in outputs)  # --restart: no worker reads the checkpoint the chief is discarding
    assert "discarded the earlier run" in outputs[0][0]
    assert len({line for stdout, _ in outputs for line in stdout.splitlines() if "fingerprint" in line}) == 1
    assert sorted(os.listdir(os.path.join(shared, "samples"))) == ["epoch_001.png"]


def test_multiworker_without_tf_config_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, os.path.join(REPO, "train_dcgan.py"), "--strategy", "multiworker",
                             "--output_dir", str(tmp_path / "out")], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "TF_CONFIG" in result.stderr
    assert not (tmp_path / "out").exists()


def test_group_std_groups_must_fit_each_devices_share_of_the_batch():
    import train_dcgan
    train_dcgan.check_batch_per_replica(32, 4, 2)  # 16 digits per device: groups of 4 fit
    with pytest.raises(train_dcgan.FixableError, match="over 16 devices gives each 2 digits.*multiple of 64"):
        train_dcgan.check_batch_per_replica(32, 4, 16)  # 2 per device: a group of 4 would mix real and generated
    with pytest.raises(train_dcgan.FixableError, match="must be a whole number"):
        train_dcgan.check_batch_per_replica(32, 0, 3)
    train_dcgan.check_batch_per_replica(32, 0, 2)


DEFAULTS_ON_TWO_DEVICES = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import train_dcgan
common = ["--strategy", "mirrored", "--max_train_images", "256", "--metrics_every", "0", "--output_dir", sys.argv[2]]
for epochs in ("1", "2"):  # one epoch, then its continuation
    code = train_dcgan.main(common + ["--epochs", epochs])
    print("exit", code, flush=True)
"""


def test_the_default_settings_train_and_continue_mirrored_over_two_devices(tmp_path):
    """Two devices stand in for two GPUs, with every other setting the default (25 steps per call):
    Keras' multi-step loop fails under MirroredStrategy, so the run must take one step per call there."""
    result = subprocess.run([sys.executable, "-c", DEFAULTS_ON_TWO_DEVICES, REPO, str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600, env=CPU_ONLY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("exit 0") == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "mirrored over 2 devices" in result.stdout
    assert "continuing the finished run" in result.stdout and "epoch 2/2" in result.stdout


def test_mirrored_on_one_cpu_device_says_there_is_nothing_to_mirror(capsys):
    import train_dcgan
    strategy = train_dcgan.make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 1
    assert "found one device" in capsys.readouterr().out
