"""Thresholds per kind of meter."""

import pytest

from processing.detector_config import DetectorConfig, config_for


def test_config_for_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        config_for("spaceship")
    assert DetectorConfig().z_threshold == 5.0
