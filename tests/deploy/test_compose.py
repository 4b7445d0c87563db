"""docker-compose.yml, checked by the real Compose binary (``config`` needs no engine) and by its normalised model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.tools import venv_tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
WORKERS = ("worker-1", "worker-2")
SCENARIO = "/scenarios/log4shell-callback"
KAFKA_IMAGE = "apache/kafka:4.1.1"


def _compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    cmd = [str(venv_tool("docker-compose")), "--project-directory", str(ROOT), "-f", str(file), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    done = _compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_compose_config_is_valid() -> None:
    done = _compose("config", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above is not vacuous: a dependency on an undefined service fails it."""
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert text.count("      worker-2:\n        condition: service_healthy") == 1
    broken.write_text(
        text.replace(
            "      worker-2:\n        condition: service_healthy", "      worker-3:\n        condition: service_healthy"
        )
    )
    done = _compose("config", "-q", file=broken)
    assert done.returncode != 0
    assert "worker-3" in done.stderr


def test_services(model: dict[str, Any]) -> None:
    assert set(model["services"]) == {"kafka", "topics", *WORKERS, "replay"}


def test_images_are_pinned_and_nothing_is_privileged(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert tag not in ("", "latest"), f"{name}: image {image!r} is not pinned"
        assert not service.get("privileged", False), name
        assert "SYS_ADMIN" not in service.get("cap_add", []), name
        assert service.get("network_mode") != "host", name
    for name in ("kafka", "topics"):
        assert model["services"][name]["image"] == KAFKA_IMAGE
    for name in (*WORKERS, "replay"):
        service = model["services"][name]
        assert service["image"] == f"shellwatch:{_package_version()}"
        assert service["build"]["context"] == str(ROOT)
        assert service["build"]["dockerfile"] == "Dockerfile"


def test_kafka_is_a_healthy_kraft_node_without_auto_creation(model: dict[str, Any]) -> None:
    kafka = model["services"]["kafka"]
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    assert all(p["host_ip"] == "127.0.0.1" for p in kafka.get("ports", []))


def _created_topics(model: dict[str, Any]) -> dict[str, int]:
    topics = model["services"]["topics"]
    assert topics["entrypoint"] == ["/bin/sh", "-ec"]
    [script] = topics["command"]
    created = dict(re.findall(r"^create --topic (\S+) --partitions (\d+)$", script, flags=re.MULTILINE))
    assert "kafka-topics.sh --bootstrap-server kafka:9092 --create --if-not-exists" in script
    return {topic: int(partitions) for topic, partitions in created.items()}


def test_topic_service_creates_co_partitioned_inputs_and_the_outputs(model: dict[str, Any]) -> None:
    created = _created_topics(model)
    env = model["services"]["worker-1"]["environment"]
    inputs = (env["SHELLWATCH_NETWORK_TOPIC"], env["SHELLWATCH_PROCESS_TOPIC"])
    outputs = (env["SHELLWATCH_ALERTS_TOPIC"], env["SHELLWATCH_DEAD_LETTER_TOPIC"])
    assert set(created) == {*inputs, *outputs}
    assert created[inputs[0]] == created[inputs[1]], "input topics must be co-partitioned"
    assert created[inputs[0]] >= len(WORKERS), "every worker gets partitions"
    topics = model["services"]["topics"]
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy", "required": True}}
    assert topics["restart"] == "no"


def test_workers_form_one_consumer_group(model: dict[str, Any]) -> None:
    workers = [model["services"][name] for name in WORKERS]
    assert workers[0]["environment"] == workers[1]["environment"], "same settings, so one group"
    env = workers[0]["environment"]
    assert env["SHELLWATCH_APP_ID"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    for worker in workers:
        assert worker["command"] == ["worker"]
        assert worker["depends_on"] == {"topics": {"condition": "service_completed_successfully", "required": True}}
        assert "/readyz" in " ".join(worker["healthcheck"]["test"])
    published = [p["published"] for w in workers for p in w["ports"]]
    assert len(published) == len(set(published)) == len(WORKERS), published
    assert {p["target"] for w in workers for p in w["ports"]} == {6066}


def test_workers_run_hardened(model: dict[str, Any]) -> None:
    for name in (*WORKERS, "replay"):
        service = model["services"][name]
        assert service["read_only"] is True
        mounts = dict(entry.partition(":")[::2] for entry in service["tmpfs"])
        assert set(mounts) == {"/tmp", "/var/lib/shellwatch"}
        # the tmpfs hides the image's data dir: it must belong to the image's user again (found by running it)
        assert set(mounts["/var/lib/shellwatch"].split(",")) >= {"uid=10001", "gid=10001"}
        assert "mode=1777" in mounts["/tmp"].split(",")
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]


def test_replay_plays_the_bundled_scenario_after_the_workers(model: dict[str, Any]) -> None:
    replay = model["services"]["replay"]
    assert replay["command"] == [
        "replay",
        f"{SCENARIO}/events.ndjson",
        "--bootstrap",
        "kafka:9092",
        "--expect",
        f"{SCENARIO}/expected.ndjson",
        "--timeout",
        "120",
    ]
    assert replay["depends_on"] == {name: {"condition": "service_healthy", "required": True} for name in WORKERS}
    [volume] = replay["volumes"]
    assert volume["type"] == "bind"
    assert Path(volume["source"]) == ROOT / "tests" / "replay" / "scenarios"
    assert volume["target"] == "/scenarios"
    assert volume["read_only"] is True
    assert replay["environment"] == model["services"]["worker-1"]["environment"], "same topics as the workers"
    assert replay["restart"] == "no"


def test_ci_override_swaps_only_the_broker_image(model: dict[str, Any]) -> None:
    """.ci/compose.ci.yml (the stack CI runs on a real engine) leaves every service but the broker's image as is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env["SHELLWATCH_CI_KAFKA_IMAGE"] = "shellwatch-ci/kafka:test"
    cmd = [str(venv_tool("docker-compose")), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    cmd += ["-f", str(ROOT / ".ci" / "compose.ci.yml"), "config", "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    ci = json.loads(done.stdout)
    assert set(ci["services"]) == set(model["services"])
    for name, service in model["services"].items():
        swapped, users = dict(ci["services"][name]), dict(service)
        if name in ("kafka", "topics"):
            assert swapped.pop("image") == "shellwatch-ci/kafka:test"
            assert swapped.pop("pull_policy") == "never"
            del users["image"]
        assert swapped == users, name
