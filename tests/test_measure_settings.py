"""A run's timing settings: options given, what the suites' [measure] tables ask, defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconvbench.cases.gather import measure_requests
from deconvbench.cases.measure_table import MeasureRequest
from deconvbench.cli import app
from deconvbench.errors import InputError
from deconvbench.run.measure_settings import DEFAULTS, resolve
from deconvbench.run.types import RunOptions

QUICK = MeasureRequest(precision=0.05, budget_s=0.3, warmup_s=0.01)


def test_without_requests_or_options_the_defaults_apply() -> None:
    settings = resolve(MeasureRequest(), [("--case", MeasureRequest())])
    assert settings.values == DEFAULTS
    assert set(settings.sources.values()) == {"default"}
    assert settings.from_suites() == []


def test_a_suite_gets_what_it_asks_and_says_so() -> None:
    settings = resolve(MeasureRequest(), [("suite 'smoke'", QUICK)])
    assert settings.values == MeasureRequest(0.05, 0.3, 0.01, DEFAULTS.min_samples)
    assert settings.sources["precision"] == "suite 'smoke'"
    assert settings.sources["min_samples"] == "default"
    assert "precision ±5% (suite 'smoke')" in settings.from_suites()
    facts = settings.facts()
    assert facts["budget_s"] == {"value": 0.3, "from": "suite 'smoke'"}


def test_an_option_given_wins_over_the_suite() -> None:
    settings = resolve(MeasureRequest(precision=0.01), [("suite 'smoke'", QUICK)])
    assert settings.values.precision == 0.01
    assert settings.sources["precision"] == "--precision"
    assert settings.values.budget_s == 0.3


def test_the_most_demanding_request_wins_and_a_suite_without_a_table_asks_for_defaults() -> None:
    slow = MeasureRequest(budget_s=5.0)
    settings = resolve(
        MeasureRequest(), [("suite 'smoke'", QUICK), ("suite 'big'", slow), ("--case", QUICK)]
    )
    assert settings.values.budget_s == 5.0 and settings.sources["budget_s"] == "suite 'big'"
    # 'big' leaves precision to the default, which is more demanding than the others' 5%
    assert settings.values.precision == DEFAULTS.precision
    assert settings.sources["precision"] == "default"
    mixed = resolve(
        MeasureRequest(), [("suite 'smoke'", QUICK), ("suite 'dcgan'", MeasureRequest())]
    )
    assert mixed.values == DEFAULTS
    assert set(mixed.sources.values()) == {"default"}


def test_requests_come_from_each_suite_once_and_from_case_strings() -> None:
    requests = dict(measure_requests(["smoke", "dcgan", "smoke"], ["in_channels=1"]))
    assert list(requests) == ["suite 'smoke'", "suite 'dcgan'", "--case"]
    assert requests["suite 'dcgan'"] == MeasureRequest() == requests["--case"]
    assert requests["suite 'smoke'"].precision == 0.05


def test_run_records_where_its_timing_settings_came_from(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    args = ["run", "--suite", "smoke", "--impl", "numpy/direct", "--pass", "forward"]
    args += ["--rounds", "1", "--budget", "0.05", "--max-memory", "none", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    timing = json.loads(Path(f"{out}.json").read_text())["timing"]
    assert timing["budget_s"] == {"value": 0.05, "from": "--budget"}
    assert timing["precision"] == {"value": 0.05, "from": "suite 'smoke'"}
    assert timing["warmup_s"]["from"] == "suite 'smoke'"
    options = json.loads(Path(f"{out}.json").read_text())["options"]
    assert options["precision"] == 0.05 and options["warmup_s"] == 0.01
    assert "timing as the suites ask: precision ±5% (suite 'smoke')" in result.output


def test_warmup_option_is_checked() -> None:
    result = CliRunner().invoke(app, ["run", "--suite", "smoke", "--warmup", "-1"])
    assert result.exit_code == 2


def test_apply_sets_every_timing_option_and_checks_it() -> None:
    options = resolve(MeasureRequest(), [("suite 'smoke'", QUICK)]).apply(RunOptions(seed=3))
    assert (options.precision, options.budget_s, options.warmup_s) == (0.05, 0.3, 0.01)
    assert options.min_samples == DEFAULTS.min_samples and options.seed == 3
    with pytest.raises(InputError, match="budget"):
        resolve(MeasureRequest(budget_s=0.0), []).apply(RunOptions())
