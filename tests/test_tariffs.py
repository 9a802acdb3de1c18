"""ABCI's points formula and dated tariffs, checked to the 5th decimal on worked examples."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from abcitrain.batch.spec import parse_spec
from abcitrain.errors import InputError
from abcitrain.points.tariffs import (
    job_points,
    max_charge,
    quote,
    reservation_points,
    round_points,
)
from abcitrain.profiles import load_profile


def test_four_rt_f_nodes_for_ten_hours() -> None:
    abci2 = load_profile("abci2")
    fy2023 = quote(abci2, "rt_F", "spot", dt.date(2023, 6, 1))
    assert job_points(fy2023, 4, 10 * 3600) == Decimal("40.0000")
    promo = quote(abci2, "rt_F", "spot", dt.date(2023, 11, 1))
    assert job_points(promo, 4, 10 * 3600) == Decimal("20.0000")
    assert "promotion" in promo.describe()
    # the promotion ended on 2024-01-05; FY2024 raised rt_F to 1.20 from 2024-04-01
    assert job_points(quote(abci2, "rt_F", "spot", dt.date(2024, 1, 5)), 4, 36000) == 40
    assert job_points(quote(abci2, "rt_F", "spot", dt.date(2024, 4, 1)), 4, 36000) == 48


def test_reserved_node_days() -> None:
    af = quote(load_profile("abci2"), "rt_AF", "reserved", dt.date(2024, 5, 1))
    assert reservation_points(af, 1, 1) == Decimal("216.0000")
    hf = quote(load_profile("abci3"), "rt_HF", "reserved", dt.date(2025, 6, 1))
    assert reservation_points(hf, 1, 1) == Decimal("270.0000")


def test_minimum_and_rounding_at_the_fifth_decimal() -> None:
    g = quote(load_profile("abci2"), "rt_G.small", "spot", dt.date(2024, 5, 1))
    assert job_points(g, 1, 0) == Decimal("0.0002")          # 0.36 x 1.8 s / 3600 = 0.00018
    assert job_points(g, 1, 1) == Decimal("0.0002")          # the 1.8 s minimum applies
    assert job_points(g, 1, 61) == Decimal("0.0061")         # 0.0061 exactly
    assert round_points(Decimal("0.00005")) == Decimal("0.0001")   # half-up
    assert round_points(Decimal("0.000049")) == Decimal("0.0000")


def test_max_charge_covers_every_array_task() -> None:
    spec, profile = parse_spec({"name": "a", "cluster": "abci3", "resource": "rt_HF",
                                "nodes": 2, "walltime": "2:00:00", "group": "g1",
                                "array": "1-5", "command": ["x"]})
    total, q = max_charge(spec, profile, dt.date(2025, 6, 1))
    assert total == Decimal("150.0000") and q.type_rate == Decimal("7.5")


def test_a_date_before_any_tariff_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no price is known before 2023-04-01"):
        quote(load_profile("abci2"), "rt_F", "spot", dt.date(2020, 1, 1))


def test_user_overrides_a_price_with_a_new_dated_entry(abcitrain_home: object) -> None:
    from pathlib import Path

    d = Path(str(abcitrain_home)) / "config" / "clusters"
    d.mkdir(parents=True)
    (d / "abci3.yaml").write_text(
        "tariffs:\n  types:\n    rt_HF:\n      - {from: 2025-01-01, rate: 7.5}\n"
        "      - {from: 2026-04-01, rate: 9.0, note: FY2026}\n")
    p = load_profile("abci3")
    assert quote(p, "rt_HF", "spot", dt.date(2026, 3, 31)).type_rate == Decimal("7.5")
    assert quote(p, "rt_HF", "spot", dt.date(2026, 4, 1)).type_rate == Decimal("9.0")


def test_points_quote_prices_a_spec_on_any_day(tmp_path: Path) -> None:
    """The rt_F promotion (0.50 from 2023-09-29) and FY2024's 1.20, from the same spec."""
    import yaml
    from conftest import cli

    (tmp_path / "q.yaml").write_text(yaml.safe_dump({
        "name": "q", "cluster": "abci2", "resource": "rt_F", "nodes": 4,
        "walltime": "10:00:00", "group": "gaa50000", "command": ["true"]}))
    promo = cli("points", "quote", "q.yaml", "--on", "2023-10-15").output
    assert "20.0000 points at the full walltime" in promo and "promotion" in promo
    fy24 = json.loads(cli("points", "quote", "q.yaml", "--on", "2024-05-01", "--json").output)
    assert fy24["charge_at_walltime"] == "48.0000" and fy24["on"] == "2024-05-01"
    bad = cli("points", "quote", "q.yaml", "--on", "tomorrow", ok=None)
    assert bad.exit_code == 2 and "--on" in bad.output
