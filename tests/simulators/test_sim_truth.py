"""Ground-truth files: written, read back equal."""

from pathlib import Path

import numpy as np
from numpy.testing import assert_array_equal

from simulators.city import simulate_city
from simulators.truth import FILES, building_columns, read_truth, write_truth


def test_round_trip(tmp_path: Path):
    city = simulate_city(
        buildings=30, start="2024-01-01", days=60, seed=5, anomaly_rate=4.0, grid_feeders=2
    )
    written = write_truth(city, tmp_path / "run")
    assert [p.name for p in written] == list(FILES)
    truth = read_truth(tmp_path / "run")
    assert truth.run["settings"]["seed"] == 5
    for name, col in building_columns(city).items():
        back = truth.buildings[name]
        if col.dtype.kind == "f":
            np.testing.assert_allclose(back, col, rtol=1e-15, equal_nan=True)
        else:
            assert_array_equal(back, col)
    assert_array_equal(truth.meters["meter_id"], city.meters.meter_id)
    assert_array_equal(truth.anomalies.start, city.anomalies.start)
    assert_array_equal(truth.anomalies.kind, city.anomalies.kind)
    np.testing.assert_allclose(truth.anomalies.magnitude, city.anomalies.magnitude, equal_nan=True)
    assert_array_equal(truth.anomaly_meter_id, city.meters.meter_id[city.anomalies.meter])
    assert_array_equal(truth.grid_events.stop_step, city.grid_events.stop_step)
