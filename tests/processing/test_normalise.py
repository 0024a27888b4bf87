"""Degree-days, normalisation, DPE labels and worst decile within groups."""

from datetime import date

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from processing.normalise import (
    degree_days,
    dpe_estimate,
    group_ids,
    normalise_heating,
    per_m2,
    worst_decile,
)


def test_degree_days_and_normalisation():
    assert_allclose(degree_days([20.0, 18.0, 10.0, np.nan]), [0, 0, 8, np.nan])
    assert_allclose(degree_days(None, t_min=[2.0], t_max=[8.0], base_c=18.0), [13.0])
    assert_allclose(normalise_heating([10_000.0, 5.0], [2000.0, 0.0]), [12_500.0, np.nan])
    assert_allclose(per_m2([1000.0, 5.0], [100.0, 0.0]), [10.0, np.nan])


def test_dpe_label_cases():
    # 100 kWh_ef/m² of gas: 100 kWh_ep (B) but 22.7 kgCO2 (C) → C.
    # 150 kWh_ef/m² electric in 2025: 345 kWh_ep (F), 11.85 kg (C) → F, a passoire.
    # The same in 2026 (factor 1.9): 285 kWh_ep → E.
    # 400 kWh_ef/m² of fuel oil: 400 kWh_ep (F), 129.6 kg (G) → G.
    est = dpe_estimate(
        [100.0, 150.0, 400.0, np.nan],
        ["gas", "electricity", "fuel_oil", "gas"],
        on=date(2025, 6, 1),
    )
    assert_array_equal(est.energy_class, ["B", "F", "F", ""])
    assert_array_equal(est.climate_class, ["C", "C", "G", ""])
    assert_array_equal(est.label, ["C", "F", "G", ""])
    assert_array_equal(est.passoire, [False, True, True, False])
    assert_allclose(est.primary_kwh_per_m2[:3], [100.0, 345.0, 400.0])
    later = dpe_estimate([150.0], "electricity", on=date(2026, 1, 1))
    assert_array_equal(later.label, ["E"])
    # Exactly on a bound belongs to the better class: 70 kWh_ep and 6 kg → A.
    assert_array_equal(dpe_estimate([70.0], "wood", on=date(2025, 1, 1)).energy_class, ["A"])


def test_worst_decile_within_groups():
    rng = np.random.default_rng(0)
    town = np.repeat(["Lille", "Roubaix", "Seclin"], [30, 20, 5])
    era = np.where(np.arange(55) % 2 == 0, "pre1975", "post1975")
    gid = group_ids(town, era)
    assert np.unique(gid).size == 6
    values = rng.permutation(55).astype(float)
    values[3] = np.nan
    res = worst_decile(values, gid, min_group=10)
    for g in np.unique(gid):
        sel = (gid == g) & ~np.isnan(values)
        n = sel.sum()
        expected = np.zeros(55, dtype=bool)
        if n >= 10:
            top = np.argsort(values[sel])[-int(np.ceil(n / 10)) :]
            expected[np.flatnonzero(sel)[top]] = True
        assert_array_equal(res.worst_decile[gid == g], expected[gid == g])
    assert not res.worst_decile[3]
    assert np.isnan(res.percentile[3])
    assert (res.group_size[town == "Seclin"] < 10).all()
