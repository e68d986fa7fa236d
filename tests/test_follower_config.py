"""follower.config: defaults, FOLLOWER_* variables, flags, validation."""

from __future__ import annotations

import pytest

from follower import config


def test_defaults():
    args, settings = config.parse_args(["weights/model_weights"], environ={})
    assert args.weights == "weights/model_weights"
    assert settings == config.DEFAULTS
    assert settings["HOST"] == "127.0.0.1" and settings["PORT"] == 4567
    assert settings["PING_INTERVAL"] <= 2.0
    assert (settings["THRESHOLD"], settings["MIN_PIXELS"], settings["LOST_AFTER"]) == (0.5, 5, 6)


def test_environment_then_flags_override_the_defaults():
    environ = {"FOLLOWER_PORT": "5000", "FOLLOWER_THRESHOLD": "0.7", "FOLLOWER_FX": "300", "OTHER": "x"}
    _, settings = config.parse_args(["m", "--port", "6000", "--host", "0.0.0.0"], environ=environ)
    assert settings["PORT"] == 6000 and settings["HOST"] == "0.0.0.0"
    assert settings["THRESHOLD"] == 0.7 and settings["FX"] == 300.0 and settings["FY"] is None


def test_log_level_and_tracker_are_normalised():
    assert config.resolve({"LOG_LEVEL": "debug"})["LOG_LEVEL"] == "DEBUG"
    assert config.resolve({"TRACKER": " None"})["TRACKER"] == "none"


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
    assert config.parse_args(argv, environ=environ)[1]["PRED_VIZ"] is expected


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        config.parse_args(["--help"], environ={})
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("(default: the depth image width; env FOLLOWER_FX)") == 1
    assert text.count("default:") == len(config.DEFAULTS)
