"""follower.config: defaults, FOLLOWER_* variables, flags, validation."""

from __future__ import annotations

import dataclasses

import pytest

from follower import config


def test_defaults():
    args, settings = config.parse_args(["weights/model_weights"], environ={})
    assert args.weights == "weights/model_weights"
    assert settings == config.FollowerConfig()
    assert settings.host == "127.0.0.1" and settings.port == 4567
    assert settings.ping_interval <= 2.0
    assert (settings.threshold, settings.min_pixels, settings.lost_after) == (0.5, 5, 6)


def test_environment_then_flags_override_the_defaults():
    environ = {"FOLLOWER_PORT": "5000", "FOLLOWER_THRESHOLD": "0.7", "FOLLOWER_FX": "300", "OTHER": "x"}
    _, settings = config.parse_args(["m", "--port", "6000", "--host", "0.0.0.0"], environ=environ)
    assert settings.port == 6000 and settings.host == "0.0.0.0"
    assert settings.threshold == 0.7 and settings.fx == 300.0 and settings.fy is None


def test_log_level_and_tracker_are_normalised():
    assert config.resolve({"LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert config.resolve({"TRACKER": " None"}).tracker == "none"


def test_tracker_settings_come_from_the_configuration():
    from follower.tracking import TrackerSettings

    _, settings = config.parse_args(["m", "--tracker", "kalman", "--confirm-hits", "3", "--confirm-frames", "4"])
    tracker = TrackerSettings.from_config(settings)
    assert (tracker.tracker, tracker.confirm_hits, tracker.confirm_frames) == ("kalman", 3, 4)
    assert TrackerSettings.from_config(config.resolve()) == TrackerSettings()  # one set of defaults


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"PORT": "http"}, "PORT must be int. Received: PORT='http'"),
        ({"PORT": "70000"}, "PORT must be between 1 and 65535"),
        ({"PING_INTERVAL": "5"}, "PING_INTERVAL must be in (0, 2.0]"),
        ({"THRESHOLD": "nan"}, "THRESHOLD must be in [0, 1)"),
        ({"FX": "-1"}, "FX must be positive"),
        ({"INFERENCE_THREADS": "-2"}, "INFERENCE_THREADS must be non-negative"),
        ({"INFERENCE_THREADS": "1.5"}, "INFERENCE_THREADS must be int. Received: INFERENCE_THREADS='1.5'"),
        ({"CY": "inf"}, "CY must be finite"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
        ({"TRACKER": "kf"}, "TRACKER must be one of kalman, none. Received: TRACKER='kf'"),
        ({"CONFIRM_HITS": "0"}, "CONFIRM_HITS must be at least 1"),
        ({"CONFIRM_HITS": "3", "CONFIRM_FRAMES": "2"}, "CONFIRM_FRAMES must be at least CONFIRM_HITS"),
        ({"GATE": "1"}, "GATE must be in (0, 1)"),
        ({"COAST_FRAMES": "7"}, "COAST_FRAMES must be in [0, LOST_AFTER]. Received: COAST_FRAMES=7"),
        ({"NOISE_M": "0"}, "NOISE_M must be positive"),
        ({"NOISE_PER_M": "-0.1"}, "NOISE_PER_M must be non-negative"),
        ({"ACCEL_NOISE": "inf"}, "ACCEL_NOISE must be positive"),
        ({"COLOUR": "red"}, "Unknown setting 'COLOUR'"),
    ],
)
def test_bad_values_are_named(layer, message):
    with pytest.raises(config.ConfigError) as caught:
        config.resolve(layer)
    assert message in str(caught.value)


def test_a_bad_flag_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as caught:
        config.parse_args(["m", "--lost-after", "many"], environ={})
    assert caught.value.code == 2
    assert "LOST_AFTER must be int" in capsys.readouterr().err


def test_a_bad_environment_variable_exits_with_usage(capsys):
    with pytest.raises(SystemExit):
        config.parse_args(["m"], environ={"FOLLOWER_MIN_PIXELS": "-3"})
    assert "MIN_PIXELS must be non-negative" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FOLLOWER_PORT": "abc"}, "FOLLOWER_PORT must be int. Received: FOLLOWER_PORT='abc'"),
        ({"FOLLOWER_PORT": "70000"}, "FOLLOWER_PORT must be between 1 and 65535. Received: FOLLOWER_PORT=70000"),
        ({"FOLLOWER_PRED_VIZ": "maybe"}, "FOLLOWER_PRED_VIZ must be true or false"),
    ],
)
def test_environment_errors_name_the_variable(environ, message):
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(")):
        config.resolve(config.from_environ(environ))


def test_a_flag_overriding_a_bad_variable_is_named_as_the_flag_value():
    with pytest.raises(config.ConfigError, match="PORT must be between 1 and 65535. Received: PORT=0"):
        config.resolve(config.from_environ({"FOLLOWER_PORT": "5000"}), {"PORT": "0"})


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["m"], {}, False),
        (["m", "--pred-viz"], {}, True),
        (["m"], {"FOLLOWER_PRED_VIZ": "Yes"}, True),
        (["m"], {"FOLLOWER_PRED_VIZ": "0"}, False),
        (["m", "--pred-viz"], {"FOLLOWER_PRED_VIZ": "off"}, True),
    ],
)
def test_pred_viz_is_a_switch_with_an_environment_variable(argv, environ, expected):
    assert config.parse_args(argv, environ=environ)[1].pred_viz is expected


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        config.parse_args(["--help"], environ={})
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("(default: the depth image width; env FOLLOWER_FX)") == 1
    assert text.count("default:") == len(dataclasses.fields(config.FollowerConfig))


# Every flag the server took when the settings became one dataclass, with a valid value other than the default
# (None for a switch) and that value as the field holds it. Renaming or dropping a flag fails these tests.
FLAGS = {
    "--host": ("0.0.0.0", "host", "0.0.0.0"),
    "--port": ("6000", "port", 6000),
    "--ping-interval": ("1.5", "ping_interval", 1.5),
    "--ping-timeout": ("20", "ping_timeout", 20.0),
    "--max-connections": ("2", "max_connections", 2),
    "--threshold": ("0.7", "threshold", 0.7),
    "--min-pixels": ("40", "min_pixels", 40),
    "--lost-after": ("9", "lost_after", 9),
    "--tracker": ("None", "tracker", "none"),
    "--confirm-hits": ("3", "confirm_hits", 3),
    "--confirm-frames": ("5", "confirm_frames", 5),
    "--gate": ("0.99", "gate", 0.99),
    "--coast-frames": ("1", "coast_frames", 1),
    "--noise-m": ("0.2", "noise_m", 0.2),
    "--noise-per-m": ("0", "noise_per_m", 0.0),
    "--accel-noise": ("2.5", "accel_noise", 2.5),
    "--inference-threads": ("0", "inference_threads", 0),
    "--runtime": ("KERAS", "runtime", "keras"),
    "--max-image-side": ("512", "max_image_side", 512),
    "--fx": ("300", "fx", 300.0),
    "--fy": ("310.5", "fy", 310.5),
    "--cx": ("-4", "cx", -4.0),
    "--cy": ("128", "cy", 128.0),
    "--stats-interval": ("60", "stats_interval", 60.0),
    "--warn-interval": ("0", "warn_interval", 0.0),
    "--log-level": ("debug", "log_level", "DEBUG"),
    "--record": ("flights", "record", "flights"),
    "--pred-viz": (None, "pred_viz", True),
}


def variable(flag: str) -> str:
    """The environment variable of a flag, as it was spelled when `FLAGS` was written: ``FOLLOWER_PORT``."""
    return "FOLLOWER_" + flag.removeprefix("--").replace("-", "_").upper()


def test_the_flags_are_those_of_every_field_and_none_was_renamed():
    specs = config.SETTINGS.values()
    assert [spec.flag for spec in specs] == list(FLAGS)
    assert [spec.variable for spec in specs] == [variable(flag) for flag in FLAGS]
    assert [spec.name for spec in specs] == [field.name for field in dataclasses.fields(config.FollowerConfig)]


@pytest.mark.parametrize("spec", config.SETTINGS.values(), ids=lambda spec: spec.flag)
def test_each_field_is_set_by_its_flag(spec):
    raw, name, expected = FLAGS[spec.flag]
    assert name == spec.name and expected != getattr(config.FollowerConfig(), name)
    argv = ["m", spec.flag] if raw is None else ["m", spec.flag, raw]
    assert getattr(config.parse_args(argv, environ={})[1], name) == expected


@pytest.mark.parametrize("spec", config.SETTINGS.values(), ids=lambda spec: spec.variable)
def test_each_field_is_set_by_its_variable(spec):
    raw, name, expected = FLAGS[spec.flag]
    environ = {variable(spec.flag): "true" if raw is None else raw}
    assert getattr(config.parse_args(["m"], environ=environ)[1], name) == expected


def test_a_field_constructed_directly_is_checked_and_named_as_the_field_key():
    with pytest.raises(config.ConfigError, match=r"GATE must be in \(0, 1\). Received: GATE=1.5"):
        config.FollowerConfig(gate=1.5)
    with pytest.raises(config.ConfigError, match=r"COAST_FRAMES must be in \[0, LOST_AFTER\]"):
        config.FollowerConfig(lost_after=2)
