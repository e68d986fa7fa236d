"""A few training steps on tiny data: the loss falls, checkpoints are written and resumed."""

import csv
import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_dataset, write_pair

from models import build_fcn, store, train
from models.augment import Augmenter, collect_targets, parse_augmentations, paste_target, shift, zoom
from models.dataset import Dataset
from models.imaging import TARGET_CLASS
from models.train_config import TrainConfig, TrainSource, parse_source


def run_training(tmp_path, *extra):
    """Train the tiny model; a warm start (--init) without its own --arch keeps the architecture of its weights."""
    arch = [] if "--init" in extra and "--arch" not in extra else ["--arch", "e8,c8,d8"]
    config = train.parse_args(
        [
            "--train", str(tmp_path / "train"), "--val", str(tmp_path / "val"), *arch,
            "--input-size", "32", "--batch-size", "4", "--lr", "0.02", "--schedule", "constant",
            "--workers", "1", "--out", str(tmp_path / "out" / "tiny"), *extra,
        ]
    )  # fmt: skip
    return train.train(config)


@pytest.fixture
def data_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path / "cache"))
    make_dataset(tmp_path / "train", 16, seed=1)
    make_dataset(tmp_path / "val", 6, seed=2)
    return tmp_path


def losses(history_csv):
    with open(history_csv) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_loss_falls_and_the_best_model_is_saved_with_its_card(data_dirs):
    card = run_training(data_dirs, "--epochs", "6")
    history = losses(data_dirs / "out" / "tiny.history.csv")
    assert len(history) == 6 and history[-1] < history[0] * 0.8
    assert (data_dirs / "out" / "tiny.loss.png").stat().st_size > 0
    assert card["input_size"] == 32 and card["spec"] == "e8,c8,d8" and card["recipe"] is None
    (source,) = card["training_data"]["train"]
    assert source["images"] == 16 and source["weight"] == 1 and len(source["sha256"]) == 64
    assert card["training_data"]["pool"] == 16 and card["validation_data"] == [str(data_dirs / "val")]
    assert "final_score" in card["validation"] and 1 <= card["best_epoch"] <= 6
    model, loaded_card = store.load(data_dirs / "out" / "tiny")
    assert loaded_card == card and model.output_shape == (None, 32, 32, 3)
    assert not (data_dirs / "out" / "tiny.ckpt").exists()


def test_a_far_check_set_weighs_as_much_as_validation_in_the_selection(data_dirs, capsys):
    make_dataset(data_dirs / "far", 4, seed=3)
    card = run_training(data_dirs, "--epochs", "2", "--val-far", str(data_dirs / "far"))
    scores = card["validation"]["final_score"], card["far_check"]["final_score"]
    assert card["selection"] == pytest.approx(sum(scores) / 2)
    with open(data_dirs / "out" / "tiny.history.csv") as f:
        rows = list(csv.DictReader(f))
    assert max(float(row["selection"]) for row in rows) == pytest.approx(card["selection"])
    assert "far check set" in capsys.readouterr().out
    card = run_training(data_dirs, "--epochs", "2", "--save-every", "1", "--lr", "0", "--out",
                        str(data_dirs / "out" / "snap"))  # fmt: skip
    for epoch in (1, 2):  # every epoch's snapshot, whether or not it was the best
        assert store.read_card(data_dirs / "out" / f"snap.epoch00{epoch}")["epochs_trained"] == epoch
    with pytest.raises(ValueError, match="--val-far needs --val"):
        train.train(train.parse_args(["--train", str(data_dirs / "train"), "--val-far", "x", "--out", "y"]))


def test_several_folders_train_as_one_each_drawn_by_its_weight_and_every_val_selects(data_dirs, capsys):
    make_dataset(data_dirs / "more", 6, seed=4)
    make_dataset(data_dirs / "val2", 4, seed=5)
    card = run_training(data_dirs, "--epochs", "2", "--train", f"{data_dirs / 'more'}:3",
                        "--val", str(data_dirs / "val2"))  # fmt: skip
    first, more = card["training_data"]["train"]
    assert (first["images"], first["weight"], more["images"], more["weight"]) == (16, 1, 6, 3)
    assert card["training_data"]["pool"] == 16 + 3 * 6 and first["sha256"] != more["sha256"]
    assert list(card["validations"]) == [str(data_dirs / "val"), str(data_dirs / "val2")]
    assert card["validation"] == card["validations"][str(data_dirs / "val")]
    scores = [result["final_score"] for result in card["validations"].values()]
    assert card["selection"] == pytest.approx(sum(scores) / 2) and "mean" in card["selection_rule"]
    assert card["validations"][str(data_dirs / "val2")]["sizes"]["no_target"]["images"] == 2
    with open(data_dirs / "out" / "tiny.history.csv") as f:
        row = next(csv.DictReader(f))
    assert {"val_score", "val_far", "val_fp", "val2_score", "val2_far", "val2_fp", "selection"} <= set(row)
    assert f"{data_dirs / 'val2'} final_score" in capsys.readouterr().out


def test_a_recipe_trains_with_the_options_given_over_it_and_the_card_names_it(data_dirs):
    recipe = data_dirs / "tiny.toml"
    recipe.write_text(
        f'train = ["{data_dirs / "train"}:2"]\nval = "{data_dirs / "val"}"\narch = "e8,c8,d8"\ninput_size = 32\n'
        'batch_size = 4\nclass_weights = [1, 1, 2]\ndice = 1\ndice-per-image = true\nschedule = "constant"\n'
        f'workers = 1\nepochs = 5\nout = "{data_dirs / "elsewhere"}"\n'
    )
    out = data_dirs / "out" / "recipe"
    config = train.parse_args(["--recipe", str(recipe), "--epochs", "1", "--no-dice-per-image", "--out", str(out)])
    assert config.train == (TrainSource(data_dirs / "train", 2),) and config.val == (data_dirs / "val",)
    assert (config.class_weights, config.epochs, config.dice_per_image, config.out) == ((1.0, 1.0, 2.0), 1, False, out)
    card = train.train(config)
    assert card["recipe"] == {
        "path": str(recipe),
        "sha256": hashlib.sha256(recipe.read_bytes()).hexdigest(),
        "overrides": ["epochs", "dice_per_image", "out"],
    }
    assert (
        card["hyperparameters"]["class_weights"] == [1.0, 1.0, 2.0] and card["training_data"]["train"][0]["weight"] == 2
    )
    assert not store.card_path(data_dirs / "elsewhere").exists()


def test_the_command_line_defaults_are_the_configs():
    config = train.parse_args(["--train", "data/train", "--out", "weights/x"])
    assert config == TrainConfig(train=(TrainSource(Path("data/train")),), out=Path("weights/x"))
    assert (config.input_size, config.epochs, config.lr, config.schedule, config.augment) == (
        160, 20, 1e-3, "cosine", ("shift", "zoom", "flip", "color", "paste")
    )  # fmt: skip
    with pytest.raises(SystemExit):
        train.parse_args(["--epochs", "1"])  # neither --recipe nor --train and --out


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("learning_rate = 0.1", "unknown option 'learning_rate'"),
        ('train = "t"\nout = "o"\nepochs = "20"', "epochs must be a whole number. Received: '20'"),
        ('train = "t:0"\nout = "o"', "the weight of 't' must be 1 or more"),
        ('train = [{ path = "t", weight = 2 }]', "a config needs out"),
        (
            'train = "t"\nout = "o"\nclass_weights = [1, 2]',
            "class_weights: 3 numbers needed, one per class. Received: [1, 2]",
        ),
        ('train = "t"\nout = "o"\nschedule = "cosine-time"', "cosine-time needs --time-limit"),
        ('train = "t"\nout = "o"\nschedule = "linear"', "invalid choice: 'linear'"),
        ('train = "t"\nout = "o"\naugment = ["flip", "blur"]', "blur"),
        ('train = "t"\nout = "o"\narch = "e8,x8"', "Bad block 'x8'"),
        ('train = "t"\nout = "o"\nval_far = 3', "val_far must be a path. Received: 3"),
        ('train = "t', "Recipe"),
    ],
)
def test_a_recipe_names_what_is_wrong(tmp_path, text, complaint):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    with pytest.raises(ValueError, match=re.escape(complaint)) as error:
        train.parse_args(["--recipe", str(recipe)])
    assert str(recipe) in str(error.value)


def test_a_recipe_that_cannot_be_read_is_named(tmp_path, capsys):
    assert train.main(["--recipe", str(tmp_path / "missing.toml")]) == 2
    assert f"Recipe '{tmp_path / 'missing.toml'}'" in capsys.readouterr().err


def test_a_train_folder_weight_is_a_whole_number_of_draws(tmp_path):
    assert parse_source("data/train:2") == TrainSource(Path("data/train"), 2)
    assert parse_source("data/train") == TrainSource(Path("data/train"), 1)
    assert parse_source("data/run:a") == TrainSource(Path("data/run:a"), 1)  # not a weight: a path
    with pytest.raises(ValueError, match="must be 1 or more"):
        parse_source("data/train:0")
    classes = np.zeros((3, 32, 32), np.uint8)
    classes[0, 0, 0] = TARGET_CLASS  # 1 pixel of 32 x 32: 64 native pixels, a far target
    classes[1, :4, :4] = TARGET_CLASS  # 16 pixels: 1,024 native pixels, a near one
    config = TrainConfig(train=(TrainSource(tmp_path),), out=tmp_path / "out", far_repeat=2)
    dataset = Dataset(tmp_path, ["a", "b", "c"], np.zeros((3, 32, 32, 3), np.uint8), classes, "")
    # the far image's weight of 2 is doubled by --far-repeat 2: drawn 4 times a pass
    assert sorted(train.sampling_pool(config, dataset, np.array([2, 1, 1]))) == [0, 0, 0, 0, 1, 2]


def test_an_interrupted_run_resumes_from_its_checkpoint(data_dirs, monkeypatch, capsys):
    original = train.Throughput.on_train_batch_end

    def interrupt_in_the_third_epoch(self, batch, logs=None):
        original(self, batch, logs)
        if self.model.optimizer.iterations.numpy() > 2 * 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(train.Throughput, "on_train_batch_end", interrupt_in_the_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_training(data_dirs, "--epochs", "4")
    assert (data_dirs / "out" / "tiny.ckpt").is_dir()
    monkeypatch.setattr(train.Throughput, "on_train_batch_end", original)
    card = run_training(data_dirs, "--epochs", "4")
    assert "Resuming" in capsys.readouterr().out
    assert 1 <= card["best_epoch"] <= 4
    with open(data_dirs / "out" / "tiny.history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2, 3]


def test_the_dice_per_image_and_the_presence_term_train_and_are_on_the_card(data_dirs):
    card = run_training(
        data_dirs, "--epochs", "1", "--dice", "1", "--dice-per-image", "--dice-empty", "--presence", "0.5"
    )
    hyperparameters = card["hyperparameters"]
    assert (hyperparameters["dice_per_image"], hyperparameters["dice_empty"], hyperparameters["presence"]) == (
        True,
        True,
        0.5,
    )
    assert card["validation"]["final_score"] >= 0
    with pytest.raises(ValueError, match="--dice-empty needs --dice-per-image"):
        run_training(data_dirs, "--dice", "1", "--dice-empty")
    with pytest.raises(ValueError, match="--presence must be 0 or more"):
        run_training(data_dirs, "--presence", "-1")


def test_cosine_over_time_decays_with_the_clock(data_dirs):
    schedule = train.CosineOverTime(0.02, seconds=100, alpha=0.05)
    rates = [schedule.rate(elapsed) for elapsed in (0, 50, 100, 500)]
    assert rates == pytest.approx([0.02, 0.02 * (0.05 + 0.95 * 0.5), 0.001, 0.001])
    run_training(data_dirs, "--epochs", "3", "--schedule", "cosine-time", "--time-limit", "1e-9")
    with open(data_dirs / "out" / "tiny.history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["learning_rate"]) == pytest.approx(0.001)  # past its time: the floor
    with pytest.raises(ValueError, match="cosine-time needs --time-limit"):
        run_training(data_dirs, "--schedule", "cosine-time")


def test_warm_start_continues_from_existing_weights(data_dirs):
    run_training(data_dirs, "--epochs", "2")
    first, _ = store.load(data_dirs / "out" / "tiny")
    card = run_training(data_dirs, "--epochs", "1", "--init", str(data_dirs / "out" / "tiny"), "--out",
                        str(data_dirs / "out" / "warm"))  # fmt: skip
    assert card["hyperparameters"]["init"].endswith("tiny") and card["spec"] == "e8,c8,d8"


def test_the_student_learns_what_the_teacher_says(data_dirs):
    """A teacher that calls every pixel "other people" pulls the student there, against the masks."""
    teacher = build_fcn("e8,c8,d8", 32)
    kernel, _ = teacher.get_layer("classes").get_weights()
    teacher.get_layer("classes").set_weights([np.zeros_like(kernel), np.array([0.0, 9.0, 0.0], np.float32)])
    store.save(teacher, data_dirs / "teacher", {"arch": "e8,c8,d8", "spec": "e8,c8,d8", "input_size": 32})
    card = run_training(data_dirs, "--epochs", "3", "--teacher", str(data_dirs / "teacher"), "--distill-weight", "5",
                        "--save-every", "3")  # fmt: skip
    assert card["hyperparameters"]["teacher"].endswith("teacher") and card["hyperparameters"]["distill_weight"] == 5
    student, _ = store.load(data_dirs / "out" / "tiny.epoch003")
    assert len(student.layers) == len(build_fcn("e8,c8,d8", 32).layers)  # the student alone, no teacher inside
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype(np.float32)
    assert np.mean(np.asarray(student(x))[..., 1]) > 0.5
    with pytest.raises(ValueError, match="--distill-weight needs --teacher"):
        run_training(data_dirs, "--distill-weight", "1")


def test_augmentations_keep_images_and_masks_aligned():
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32, 3), np.uint8)
    classes = np.zeros((32, 32), np.uint8)
    image[10:20, 10:20] = (200, 0, 0)
    classes[10:20, 10:20] = 2
    shifted_image, shifted_classes = shift(image, classes, rng)
    np.testing.assert_array_equal(shifted_image[..., 0] == 200, shifted_classes == 2)
    cutouts = collect_targets(image[None], classes[None], min_pixels=50)
    pasted_image, pasted_classes = paste_target(np.zeros_like(image), np.zeros_like(classes), cutouts[0], rng)
    assert 2 <= (pasted_classes == 2).sum() <= 100
    assert (pasted_image[pasted_classes == 2, 0] > 100).all()
    augmented = Augmenter(parse_augmentations("all"), cutouts)(image, classes, rng)
    assert augmented[0].shape == image.shape and augmented[1].shape == classes.shape


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.25, 1.5])
def test_zoom_keeps_the_size_and_scales_the_target_with_its_mask(scale):
    image = np.zeros((64, 64, 3), np.uint8)
    classes = np.zeros((64, 64), np.uint8)
    image[24:40, 24:40] = (200, 0, 0)
    classes[24:40, 24:40] = 2
    zoomed_image, zoomed_classes = zoom(image, classes, np.random.default_rng(1), scales=(scale, scale))
    assert zoomed_image.shape == image.shape and zoomed_classes.shape == classes.shape
    target = zoomed_classes == 2
    _, _, stats, _ = cv2.connectedComponentsWithStats(target.astype(np.uint8))
    largest = stats[1:, cv2.CC_STAT_AREA].max()  # a shrunk frame's mirrored border may repeat the target
    assert largest <= 256 * scale**2 * 1.3 and (scale > 1 or largest >= 256 * scale**2 * 0.7)
    assert (zoomed_image[target, 0] > 100).mean() > 0.9


def test_zoom_just_below_one_keeps_the_crop_inside_the_frame():
    """At 192 px a factor of 0.9974 rounds to the full size one way and to 193 px the other (it stopped a run)."""
    image, classes = np.zeros((192, 192, 3), np.uint8), np.zeros((192, 192), np.uint8)
    zoomed_image, _ = zoom(image, classes, np.random.default_rng(0), scales=(0.9974, 0.9974))
    assert zoomed_image.shape == image.shape


def test_paste_draws_heights_down_to_a_few_pixels():
    rng = np.random.default_rng(0)
    cutout_image = np.zeros((64, 64, 3), np.uint8)
    cutout_classes = np.zeros((64, 64), np.uint8)
    cutout_classes[:, 24:40] = 2
    (cutout,) = collect_targets(cutout_image[None], cutout_classes[None])
    heights = []
    for _ in range(200):
        _, pasted = paste_target(np.zeros((256, 256, 3), np.uint8), np.zeros((256, 256), np.uint8), cutout, rng)
        rows = np.nonzero((pasted == 2).any(axis=1))[0]
        heights.append(len(rows))
    assert min(heights) <= 5 and max(heights) >= 40


def constant_model(path, favoured_class: int):
    """A tiny model that predicts ``favoured_class`` everywhere, saved with its card."""
    model = build_fcn("e8,c8,d8", 32)
    kernel, bias = model.get_layer("classes").get_weights()
    model.get_layer("classes").set_weights([np.zeros_like(kernel), np.eye(3, dtype=np.float32)[favoured_class] * 10])
    store.save(model, path, {"spec": "e8,c8,d8", "input_size": 32})
    return path


def test_far_targets_and_hard_negatives_are_drawn_more_often(data_dirs, capsys):
    far_away = np.zeros((32, 32), np.uint8)
    far_away[10, 10] = 2  # one pixel at 32 px: 64 native pixels, a far target (and no target for the score)
    write_pair(data_dirs / "train", 16, np.full((32, 32, 3), 110, np.uint8), far_away)
    data = train.load_dataset(data_dirs / "train", 32)
    negatives = (data.classes == 2).sum(axis=(1, 2)) <= 3
    seeing_targets = constant_model(data_dirs / "target_everywhere", favoured_class=2)
    config = train.parse_args(["--train", "x", "--out", "y", "--input-size", "32", "--far-repeat", "3",
                             "--init", str(seeing_targets), "--hard-negative-repeat", "2"])  # fmt: skip
    weights = np.full(len(data), 2)  # a folder drawn twice a pass: its far targets and negatives too
    counts = np.bincount(train.sampling_pool(config, data, weights), minlength=len(data))
    far = train.is_far(train.target_areas(data.classes))
    assert negatives.any() and far.any()
    np.testing.assert_array_equal(counts, 2 * (1 + 2 * far + negatives))  # every negative is a false positive here
    out = capsys.readouterr().out
    assert "Far targets (4-100 px at 256)" in out and f"finds a target in {negatives.sum()} training images" in out
    seeing_nothing = constant_model(data_dirs / "background_everywhere", favoured_class=0)
    assert len(train.mine_hard_negatives(train.init_at_size(str(seeing_nothing), 32), data)) == 0
    assert train.init_at_size(str(seeing_nothing), 64).input_shape == (None, 64, 64, 3)  # rebuilt from its spec
    with pytest.raises(ValueError, match="give --init"):
        train.parse_args(["--train", "x", "--out", "y", "--hard-negative-repeat", "2"])


def test_unknown_augmentation_is_named():
    with pytest.raises(ValueError, match="blur"):
        parse_augmentations("flip,blur")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_same_command_trains_on_another_backend(data_dirs, backend):
    """The model trained without TensorFlow, distilled from one saved with it, loads in the TensorFlow process
    unchanged."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed here (the GPU machines train with KERAS_BACKEND={backend})")
    out = data_dirs / "out" / backend
    store.save(build_fcn("e8,c8,d8", 32), data_dirs / "teacher", {"spec": "e8,c8,d8", "input_size": 32})
    command = [
        sys.executable, "-m", "models.train", "--train", str(data_dirs / "train"), "--arch", "e8,c8,d8",
        "--input-size", "32", "--batch-size", "4", "--epochs", "1", "--workers", "1", "--out", str(out),
        "--teacher", str(data_dirs / "teacher"),
    ]  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend}
    subprocess.run(command, check=True, env=env, cwd=train.__file__.rsplit("/models/", 1)[0], timeout=300)
    model, card = store.load(out)
    assert card["versions"]["backend"] == backend and card["hyperparameters"]["distill_weight"] == 1
    assert model.predict_on_batch(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 32, 32, 3)


def test_warm_start_transfers_matching_layers_to_a_new_architecture(data_dirs, capsys):
    run_training(data_dirs, "--epochs", "1")
    source, _ = store.load(data_dirs / "out" / "tiny")
    card = run_training(data_dirs, "--epochs", "1", "--init", str(data_dirs / "out" / "tiny"), "--arch", "e8,c8,d4",
                        "--input-size", "64", "--lr", "0", "--out", str(data_dirs / "out" / "narrow"))  # fmt: skip
    assert card["spec"] == "e8,c8,d4" and card["input_size"] == 64
    assert "4 of" in capsys.readouterr().out  # enc1 conv and BN, middle conv and BN; not the decoder
    narrow, _ = store.load(data_dirs / "out" / "narrow")
    for name in ("enc1_sepconv", "middle_conv"):
        for theirs, ours in zip(source.get_layer(name).get_weights(), narrow.get_layer(name).get_weights()):
            np.testing.assert_allclose(ours, theirs)
