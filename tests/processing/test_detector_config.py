"""Thresholds per kind of meter, and an operator's overrides of them."""

import pytest

from processing.detector_config import (
    BUILT_IN_CONFIGS,
    TEMPERATURE_DETECTOR,
    DetectorConfig,
    config_for,
    tuned_configs,
    tuned_quality,
)


def test_config_for_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        config_for("spaceship")
    assert DetectorConfig().z_threshold == 5.0
    assert config_for("temperature") is TEMPERATURE_DETECTOR


def test_an_operator_tunes_a_kind_and_the_others_keep_theirs():
    tuned = tuned_configs({
        "school": {"z_single": 8, "check_holidays": False, "night_hours": [22, 6]},
        "household_gas": {"common_cause": {"alpha": 0.01}},
    })  # fmt: skip
    assert set(tuned) == {"school", "household_gas"}
    school = tuned["school"]
    assert (school.z_single, school.check_holidays, school.night_hours) == (8.0, False, (22, 6))
    assert isinstance(school.z_single, float)
    assert school.cusum_h == BUILT_IN_CONFIGS["school"].cusum_h  # the rest as built in
    gas = tuned["household_gas"]
    assert gas.common_cause.alpha == 0.01
    assert gas.common_cause.stand_out == BUILT_IN_CONFIGS["household_gas"].common_cause.stand_out
    assert gas.daily_weather_model == BUILT_IN_CONFIGS["household_gas"].daily_weather_model
    assert tuned_configs({}) == {}


def test_data_quality_thresholds_per_kind_are_checked_and_typed():
    assert tuned_quality({"gas": {"flatline_steps": 8, "flatline_rel_tol": 0}}) == {
        "gas": {"flatline_steps": 8, "flatline_rel_tol": 0.0}
    }
    with pytest.raises(ValueError, match=r"^gas\.flatline_stepz: not a threshold of QualityConfig"):
        tuned_quality({"gas": {"flatline_stepz": 8}})
    with pytest.raises(ValueError, match=r"^gaz: unknown meter kind"):
        tuned_quality({"gaz": {}})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scool": {"z_single": 8}}, r"^scool: unknown meter kind; known: household, "),
        ({"school": {"z_singel": 8}}, r"^school\.z_singel: not a threshold of DetectorConfig"),
        ({"school": {"z_single": "high"}}, r"^school\.z_single: expected a number, got 'high'"),
        ({"school": {"z_single": True}}, r"^school\.z_single: expected a number, got True"),
        ({"school": {"min_nights": 2.5}}, r"^school\.min_nights: expected a whole number"),
        ({"school": {"check_nights": "no"}}, r"^school\.check_nights: expected true or false"),
        ({"school": {"night_hours": [23]}}, r"^school\.night_hours: expected 2 values"),
        ({"school": {"night_hours": [23, "5"]}}, r"^school\.night_hours: expected a whole"),
        ({"school": 8}, r"^school: expected a table of thresholds, got 8"),
        ({"school": {"cusum_h": -2}}, r"^school\.cusum_h: must be 0 or more, got -2\.0"),
        ({"school": {"night_hours": [23, -1]}}, r"^school\.night_hours: must be 0 or more"),
        ({"school": {"reference_weeks": 0}}, r"^school\.reference_weeks: must be 1 or more"),
        ({"gas": {"tail_quantile": 1}}, r"^gas\.tail_quantile: must lie in \[0, 1\), got 1\.0"),
        ({"temperature": {"local_median_steps": 8}}, r"^temperature\.local_median_steps: .* odd"),
        ({"gas": {"common_cause": {"alfa": 1}}}, r"^gas\.common_cause\.alfa: not a threshold"),
    ],
)
def test_a_wrong_override_names_kind_and_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        tuned_configs(overrides)
