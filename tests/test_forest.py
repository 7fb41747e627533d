"""The forest plot of a claims table (analysis/forest.py, python -m analysis forest)."""

import math

import pandas as pd
import pytest
from PIL import Image

from analysis.__main__ import main
from analysis.forest import forest_plot, limits, read_claims, untested_lines

COLUMNS = ["id", "claim", "check", "variants", "per_seed", "seeds", "mean", "ci95_low", "ci95_high", "band_low",
           "band_high", "strict", "verdict", "reason", "covers", "units", "seed_sd", "seeds_needed", "p_improvement",
           "p_improvement_low", "p_improvement_high", "paper", "source"]
INF, NAN = math.inf, math.nan


def row(id_, check, mean, low, high, band, verdict, strict=False, reason="", covers="seeds x images",
        units="3 seeds x 144 images"):
    """One claims row in the table's columns."""
    return {"id": id_, "claim": "the paper's words", "check": check, "variants": "flowgrpo,grpo_guard",
            "per_seed": "", "seeds": 3, "mean": mean, "ci95_low": low, "ci95_high": high, "band_low": band[0],
            "band_high": band[1], "strict": strict, "verdict": verdict, "reason": reason, "covers": covers,
            "units": units, "seed_sd": 0.1, "seeds_needed": NAN, "p_improvement": NAN, "p_improvement_low": NAN,
            "p_improvement_high": NAN, "paper": "", "source": "claims.csv"}


@pytest.fixture
def claims():
    """Every verdict, infinite band edges on either side, a strict band, very different scales, a not-tested row."""
    return pd.DataFrame([
        row("C1", "GRPO-Guard's Average(gold) over FlowGRPO's at matched proxy, in units of the base", 0.08, 0.02,
            0.14, (0.0, INF), "reproduced", strict=True),
        row("C2", "mean log-ratio shift over its std at the last step", -3.1, -4.0, -2.2, (-INF, -1.0),
            "reproduced"),
        row("C3", "gradient norm max/min over steps", 120.0, 80.0, 160.0, (1.0, 10.0), "not reproduced",
            covers="iterations (one seed)", units="80 iterations"),
        row("C4", "clip fraction above 1+eps", 0.01, -0.02, 0.04, (0.0, 1.0), "inconclusive",
            covers="images (one seed)", units="144 images"),
        row("C5", "proxy at the end", 0.5, NAN, NAN, (0.0, INF), "not tested", reason="one seed: no interval"),
        row("C6", "GenEval accuracy of the counting tag", NAN, NAN, NAN, (0.0, INF), "not tested",
            reason="no seed has this value", covers="", units=""),
    ], columns=COLUMNS)


def test_forest_plot_of_every_verdict_is_written(claims, tmp_path):
    out = tmp_path / "figures" / "claims_forest.png"
    forest_plot(claims, out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 1000 and image.size[1] > 400


def test_each_axis_covers_its_finite_band_edges_and_interval(claims):
    for _, r in claims[claims["mean"].notna()].iterrows():
        low, high = limits(r)
        ends = [v for v in (r.ci95_low, r.ci95_high, r["mean"], r.band_low, r.band_high) if math.isfinite(v)]
        assert low < min(ends) and max(ends) < high and math.isfinite(low) and math.isfinite(high)
    assert limits(claims.iloc[0])[1] < 1  # C1's infinite upper edge does not stretch the axis
    assert untested_lines(claims[claims["mean"].isna()]) == ["C6 GenEval accuracy of the counting tag: no seed has this value"]


def test_cli_reads_infinite_band_edges_back_from_csv(claims, tmp_path):
    path = tmp_path / "claims.csv"
    claims.to_csv(path, index=False)
    read = read_claims(path)
    assert read.band_high[0] == INF and read.band_low[1] == -INF and read.strict.dtype == bool
    out = tmp_path / "forest.png"
    assert main(["forest", "--claims", str(path), "--out", str(out)]) == 0
    assert out.stat().st_size > 10000


@pytest.mark.parametrize("column", ["band_low", "covers"])
def test_missing_column_fails_naming_the_file_and_writes_nothing(claims, tmp_path, capsys, column):
    path = tmp_path / "old_claims.csv"
    claims.drop(columns=column).to_csv(path, index=False)
    out = tmp_path / "forest.png"
    with pytest.raises(SystemExit) as exit_:
        main(["forest", "--claims", str(path), "--out", str(out)])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert str(path) in message and column in message.split("(")[0]
    assert not out.exists()


def test_a_table_without_any_value_is_refused(claims, tmp_path):
    with pytest.raises(ValueError, match="no row with a finite mean"):
        forest_plot(claims[claims["mean"].isna()], tmp_path / "forest.png")
    assert not (tmp_path / "forest.png").exists()
