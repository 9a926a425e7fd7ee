"""The retry policy's delays and the environment setting that scales them."""

from __future__ import annotations

import pytest

from log_archiver.config import load_config
from log_archiver.errors import ConfigError, GitHubThrottledError, GitHubTransientError
from log_archiver.util.retry import DELAY_SCALE_ENV, RetryPolicy, delay_scale_from_environment


def failing(error: Exception, times: int):
    """A call that raises ``error`` ``times`` times, then answers "done"."""
    left = [times]

    def call(_timeout):
        if left[0]:
            left[0] -= 1
            raise error
        return "done"

    return call


def waits(policy_kwargs: dict, error: Exception, times: int) -> list[float]:
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append, **policy_kwargs)
    assert policy.run(failing(error, times)) == ("done", times)
    return slept


def test_spec_delays_without_the_setting(monkeypatch):
    monkeypatch.delenv(DELAY_SCALE_ENV, raising=False)
    assert waits({}, GitHubTransientError("503"), 3) == [2.0, 4.0, 8.0]
    assert waits({}, GitHubThrottledError("rate"), 3) == [10.0, 30.0, 60.0]


@pytest.mark.parametrize(("value", "expected"), [("0", [0.0, 0.0, 0.0]),
                                                 ("0.5", [5.0, 15.0, 30.0])])
def test_the_environment_scales_every_wait_but_not_the_number_of_retries(monkeypatch, value,
                                                                          expected):
    monkeypatch.setenv(DELAY_SCALE_ENV, value)
    assert waits({}, GitHubThrottledError("rate"), 3) == expected
    with pytest.raises(GitHubTransientError) as caught:
        RetryPolicy(sleep=lambda _s: None).run(failing(GitHubTransientError("503"), 9))
    assert caught.value.retries == 3


def test_an_explicit_scale_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(DELAY_SCALE_ENV, "0")
    assert waits({"delay_scale": 1.0}, GitHubTransientError("503"), 2) == [2.0, 4.0]


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "11", "inf"])
def test_a_bad_scale_is_a_config_error_naming_it(monkeypatch, tmp_path, value):
    with pytest.raises(ConfigError) as caught:
        delay_scale_from_environment({DELAY_SCALE_ENV: value})
    assert f"{DELAY_SCALE_ENV}={value!r}" in caught.value.message
    assert DELAY_SCALE_ENV in caught.value.hint
    with pytest.raises(ConfigError, match=DELAY_SCALE_ENV):  # before any command starts
        load_config(tmp_path, {DELAY_SCALE_ENV: value})


def test_a_bad_scale_stops_the_cli_with_a_config_error(workspace, run_cli, monkeypatch):
    monkeypatch.setenv(DELAY_SCALE_ENV, "soon")
    result = run_cli("archive", "5")
    assert result.exit_code == 1 and result.json["errors"][0]["type"] == "config"
    assert "'soon'" in result.json["errors"][0]["message"]
    assert not (workspace / "logs" / ".archive-index.json").exists()
