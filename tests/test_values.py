"""The value rules behind the config checks: names, numbers, variable names, secrets."""

from __future__ import annotations

import base64
import random

import pytest

from provisioner.values import looks_like_secret, name_problem, number_problem, one_line, variable_problem, words_problem


@pytest.mark.parametrize("name", ["a55-perf", "R5CXC1ASA0L", "provisioner.demo", "SIM_0001", "x" * 128])
def test_names_that_pass(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "ci,evil", "ci\nevil", "a b", "$(reboot)", "-rf", ".hidden", "x" * 129, "é", 7])
def test_names_that_are_refused(name):
    assert name_problem(name)


def test_selector_words():
    assert words_problem("Galaxy A55 5G", "model") is None
    assert words_problem("Galaxy  A55", "model") and words_problem("A55,x", "model") and words_problem(" A55", "model")


@pytest.mark.parametrize("value", ["TASKCLUSTER_ACCESS_TOKEN", "LT_ACCESS_KEY", "gecko-t-lambda-perf-a55",
                                   "proj-autophone/gecko-t-lambda-perf-a55", "/builds/worker/fetches/android-34.0.0",
                                   "MOZ_AUTOMATION", "Galaxy A55 5G", "https://firefox-ci-tc.services.mozilla.com"])
def test_ordinary_values_do_not_look_like_secrets(value):
    assert not looks_like_secret(value)


def test_tokens_look_like_secrets():
    rng = random.Random(11)  # the same tokens every run
    tokens = [base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=") for _ in range(200)]
    tokens += [rng.randbytes(20).hex() for _ in range(200)]
    assert all(looks_like_secret(t) for t in tokens + ["ghp_Zq8Xv2LmN4pR7sT1uW3yB5dF9hJ0kQ6eAbCd"])


def test_variable_names_never_show_the_value():
    assert variable_problem("LT_ACCESS_KEY") is None
    for value in ["Zq8Xv2LmN4pR7sT1uW3yB5dF9hJ0kQ6e", "my password", "A" * 65, ""]:
        why = variable_problem(value)
        assert why and (not value or value not in why)


def test_numbers():
    assert number_problem(float("inf"), 1, 10) == "must be a finite number, not inf"
    assert number_problem(float("nan"), None, None) == "must be a finite number, not nan"
    assert number_problem(0, 1, 86400) == "must be at least 1, not 0"
    assert number_problem(1e308, 1, 86400) == "must be at most 86400, not 1e+308"
    assert number_problem(2**63, None, None) == "must be at most 9223372036854775807, not 9223372036854775808"
    assert number_problem(-1, 0, None) == "must not be negative, not -1"
    assert number_problem(30, 1, 86400) is None


def test_one_line():
    assert one_line("a\nb\tc\x00") == "a\\nb\\tc\\x00"
