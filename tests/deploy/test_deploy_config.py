"""deploy/ as far as it can be checked without a cluster: the YAML parses, the instance file passes
Dagster's own instance schema and each configured class's config schema (K8sRunLauncher, Postgres
storage, QueuedRunCoordinator, S3ComputeLogManager; these need the `deploy` extra), and the Helm
values, the Dockerfile and the workspace name the same code location and instance settings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer

from pipelines.runner import INSTANCE_YAML

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV = {"DAGSTER_PG_HOST": "postgres", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USER": "dagster",
       "DAGSTER_PG_PASSWORD": "not-a-secret", "PULSE_LOGS_BUCKET": "logs", "AWS_ENDPOINT_URL": "http://minio:9000"}


@pytest.fixture
def instance(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    return config


def test_the_instance_passes_dagsters_schema(instance):
    assert set(instance) >= {"storage", "run_launcher", "run_coordinator", "concurrency"}
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    # the same writer pool the local instance (`pulse`) configures
    assert yaml.safe_load(INSTANCE_YAML)["concurrency"]["pools"] == instance["concurrency"]["pools"]


@pytest.mark.slow  # importing dagster_k8s (the kubernetes client) alone takes seconds
def test_every_configured_class_accepts_its_config(instance):
    pytest.importorskip("dagster_k8s", reason="the `deploy` extra (uv sync --extra deploy)")
    pytest.importorskip("dagster_postgres")
    pytest.importorskip("dagster_aws")
    from dagster_postgres import DagsterPostgresStorage

    checked = {}
    for key in ("run_launcher", "run_coordinator", "compute_logs"):
        data = instance[key]
        klass = class_from_code_pointer(data["module"], data["class"])
        result = process_config(klass.config_type(), data.get("config") or {})
        assert result.success, (key, [e.message for e in result.errors])
        checked[key] = klass.__name__
    assert checked == {"run_launcher": "K8sRunLauncher", "run_coordinator": "QueuedRunCoordinator",
                       "compute_logs": "S3ComputeLogManager"}
    result = process_config(DagsterPostgresStorage.config_type(), instance["storage"]["postgres"])
    assert result.success, [e.message for e in result.errors]


def test_helm_values_dockerfile_and_workspace_agree(instance):
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    module = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd and yaml.safe_load(cmd.group(1))[-2:] == ["--module-name", module]
    assert f'"{deployment["port"]}"' in cmd.group(1)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["enabled"] and values["dagsterDaemon"]["runCoordinator"]["type"] == \
        "QueuedRunCoordinator"
    assert values["additionalInstanceConfig"]["concurrency"] == instance["concurrency"]
    mounts = values["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"]
    env = next(d for d in yaml.safe_load_all((DEPLOY / "pulse-env.yaml").read_text()) if d["kind"] == "ConfigMap")
    assert mounts[0]["mountPath"] == env["data"]["PULSE_HOME"] == deployment["volumeMounts"][0]["mountPath"]
    # the image installs exactly the locked deploy extra, and that extra holds the classes used above
    assert dockerfile.count("uv sync --locked --no-dev --extra deploy") == 2
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["deploy"]
    assert {re.split(r"[<>=]", r)[0] for r in extra} == {"dagster-aws", "dagster-k8s", "dagster-postgres"}
    # deploy/README.md shows the same build and install commands
    readme = (DEPLOY / "README.md").read_text()
    assert "docker build -f deploy/Dockerfile" in readme and "helm upgrade --install pulse dagster/dagster" in readme
