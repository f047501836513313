"""The cassettes are what ``bb_shapes.py`` builds (so they can be read, changed and reviewed as code), cover every
endpoint the plugin calls, and hold no credential (``tests/test_cassettes.py`` checks every cassette too)."""

from __future__ import annotations

import re

import pytest
import yaml

from bb_shapes import CASSETTES, cassettes, render

ENDPOINTS = {  # every call of the plugin: (method, path with ids as {id})
    ("GET", "admin/devices"), ("GET", "admin/runs"), ("GET", "me/projects/{id}/runs/{id}/device-sessions"),
    ("GET", "me/projects"), ("GET", "me/device-groups"), ("GET", "device-groups/{id}/devices"),
    ("GET", "admin/frameworks"), ("GET", "files"), ("POST", "runs"), ("GET", "me"), ("GET", "devices"),
    ("POST", "users/{id}/projects"), ("POST", "users/{id}/projects/{id}"), ("POST", "users/{id}/device-groups"),
    ("POST", "device-groups/{id}/devices"),
}


@pytest.mark.parametrize("name", sorted(cassettes()))
def test_each_cassette_is_what_shapes_builds(name: str) -> None:
    assert (CASSETTES / f"{name}.yaml").read_text() == render(cassettes()[name]), \
        "run python plugins/bitbar/tests/bb_shapes.py"


def test_no_stray_cassette() -> None:
    assert {p.stem for p in CASSETTES.glob("*.yaml")} == set(cassettes())


def test_every_endpoint_has_a_cassette() -> None:
    seen = set()
    for path in CASSETTES.glob("*.yaml"):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request = interaction["request"]
            endpoint = request["uri"].split("/api/v2/", 1)[1].split("?")[0]
            seen.add((request["method"], re.sub(r"/\d+", "/{id}", endpoint)))
    assert ENDPOINTS <= seen, ENDPOINTS - seen


def test_the_launch_bodies_carry_no_token() -> None:
    for path in CASSETTES.glob("launch_*.yaml"):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            if interaction["request"]["method"] == "POST":
                assert '{"key": "TASKCLUSTER_ACCESS_TOKEN", "value": "***"}' in interaction["request"]["body"]
