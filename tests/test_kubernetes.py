"""deploy/kubernetes, checked offline: no cluster, no network.

Every resource is validated against the Kubernetes JSON schemas that the `kubernetes-validate` package
ships (strict: an unknown or misspelt field fails), for Kubernetes 1.29 and the newest version the
package has. The overlay is built here as kustomize builds it — resources, patches, namespace, replica
counts, images — and a kustomization that uses anything else fails, so the build stays honest (when
written, it gave exactly what `kubectl kustomize` gave, kustomize v5.5.0). Then the
parts are checked against each other and against the app: selectors, key references, settings, probe
paths, `infoopt` commands, the Dockerfile's user, port and paths.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from typer.testing import CliRunner, Result

from cases.routes import MAX_IMPORT_BYTES
from infoopt import cli
from infoopt.app import create_app
from infoopt.core.settings import (
    InsecureConfiguration,
    Settings,
    TelegramSettings,
    TwilioSettings,
    check_production,
)

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
PRODUCTION = KUBERNETES / "overlays" / "production"
# Managed clusters still run 1.29; the newest is whatever the package ships.
KUBERNETES_VERSIONS = ("1.29", latest_version())
# What this file's build understands; kustomize knows more, and using more must teach the build first.
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace"}
# Settings that are plain strings but carry a password.
CREDENTIAL_URLS = {"INFOOPT_DATABASE_URL", "INFOOPT_REDIS_URL"}
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (Settings, TelegramSettings, TwilioSettings)
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# --- building the kustomization -------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def build(directory: Path) -> list[dict[str, Any]]:
    """The resources `kustomize build directory` produces, for the fields in KUSTOMIZATION_FIELDS."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    assert not unknown, f"{directory}: this test cannot build {sorted(unknown)}; teach build() first"
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        resources += build(path) if path.is_dir() else load_documents(path)
    # kustomize's order: patches, then namespace, replica counts and images.
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"only `path:` patches are built here, not {patch}"
        for document in load_documents(directory / patch["path"]):
            resources = apply_patch(resources, document)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for replica in kustomization.get("replicas", []):
        target = find(resources, "Deployment", replica["name"])
        target["spec"]["replicas"] = replica["count"]
    for image in kustomization.get("images", []):
        for container in containers(resources):
            container["image"] = retag(container["image"], image)
    return resources


def apply_patch(resources: list[dict[str, Any]], patch: dict[str, Any]) -> list[dict[str, Any]]:
    """A strategic-merge patch made of maps only (lists merge by key in kustomize: not built here)."""
    target = find(resources, patch["kind"], patch["metadata"]["name"])
    assert target["apiVersion"] == patch["apiVersion"], f"patch {patch['metadata']['name']}: apiVersion"
    if patch.get("$patch") == "delete":
        return [resource for resource in resources if resource is not target]
    merge(target, {key: value for key, value in patch.items() if key not in ("apiVersion", "kind")})
    return resources


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        assert not isinstance(value, list), f"patch sets a list at {key!r}: keep patches to maps"
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def retag(image: str, rule: dict[str, str]) -> str:
    """kustomize's `images:` rule on one image reference (name[:tag][@digest])."""
    name, _, digest = image.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if name != rule["name"]:
        return image
    name = rule.get("newName", name)
    tag = rule.get("newTag", tag)
    digest = rule.get("digest", digest)
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [resource for resource in resources if resource["kind"] == kind]


def pod_specs(resources: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for deployment in of_kind(resources, "Deployment"):
        yield deployment["spec"]["template"]["spec"]


def containers(resources: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every container and init container of every pod template."""
    for spec in pod_specs(resources):
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


def container(resources: list[dict[str, Any]], deployment: str, name: str) -> dict[str, Any]:
    spec = find(resources, "Deployment", deployment)["spec"]["template"]["spec"]
    [found] = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return found


def app_image(resources: list[dict[str, Any]]) -> str:
    return str(container(resources, "app", "app")["image"])


def app_containers(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The containers that run the app's image (and so read its settings)."""
    return [c for c in containers(resources) if c["image"] == app_image(resources)]


BUILDS = {"base": build(BASE), "production": build(PRODUCTION)}


@pytest.fixture(params=sorted(BUILDS))
def resources(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return copy.deepcopy(BUILDS[request.param])


# --- what the app says about itself ---------------------------------------------------------------


def setting_variables() -> dict[str, Any]:
    """Every environment variable the app reads, with its type: the Settings classes' fields."""
    variables: dict[str, Any] = {}
    for settings_class in SETTINGS_CLASSES:
        prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
        for field, info in settings_class.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
                continue  # a nested group, read under its own prefix
            variables[prefix + field.upper()] = annotation
    return variables


def secret_variables() -> set[str]:
    """The settings that hold a secret: every SecretStr, and the URLs that carry passwords."""
    secret = set(CREDENTIAL_URLS)
    for name, annotation in setting_variables().items():
        is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        if annotation is SecretStr or (is_union and SecretStr in typing.get_args(annotation)):
            secret.add(name)
    return secret


def run_cli_help(words: list[str]) -> Result:
    """`infoopt ... --help`: the CLI parses the words, refusing an unknown command or option, and stops."""
    assert words[0] == "infoopt", words
    return CliRunner().invoke(cli.app, [*words[1:], "--help"])


def served_paths() -> set[str]:
    application = create_app(Settings(_env_file=None, env="test"))  # type: ignore[call-arg]
    return {route.path for route in application.routes if hasattr(route, "path")}


def dockerfile(pattern: str) -> str:
    match = re.search(pattern, DOCKERFILE, re.MULTILINE)
    assert match, f"the Dockerfile has no {pattern!r}"
    return match.group(1)


# --- the resources are valid Kubernetes -----------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_is_valid_kubernetes(resources: list[dict[str, Any]], version: str) -> None:
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path)
            pytest.fail(f"{resource['kind']} {resource['metadata']['name']} at {where}: {error.message}")


def test_the_validator_rejects_what_kubernetes_would() -> None:
    broken = copy.deepcopy(find(BUILDS["base"], "Deployment", "worker"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)
    misspelt = copy.deepcopy(find(BUILDS["base"], "Deployment", "worker"))
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSIONS[0], strict=True)


def test_the_build_does_what_kustomize_does_with_images_replicas_and_patches() -> None:
    assert (
        retag("infoopt-app:latest", {"name": "infoopt-app", "newName": "r.io/a", "newTag": "1"}) == "r.io/a:1"
    )
    assert retag("rasa/rasa:3.6.21-full", {"name": "infoopt-app", "newTag": "1"}) == "rasa/rasa:3.6.21-full"
    assert retag("localhost:5000/a", {"name": "localhost:5000/a", "newTag": "2"}) == "localhost:5000/a:2"
    resources = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}]
    patch = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2"}}
    assert apply_patch(copy.deepcopy(resources), patch)[0]["data"] == {"a": "1", "b": "2"}
    assert apply_patch(copy.deepcopy(resources), {**patch, "$patch": "delete"}) == []
    with pytest.raises(AssertionError, match="keep patches to maps"):
        apply_patch(copy.deepcopy(resources), {**patch, "data": {"a": ["x"]}})


def test_everything_lives_in_its_own_namespace(resources: list[dict[str, Any]]) -> None:
    [namespace] = of_kind(resources, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for resource in resources:
        if resource["kind"] not in CLUSTER_SCOPED:
            assert resource["metadata"]["namespace"] == namespace["metadata"]["name"]


# --- the parts find each other --------------------------------------------------------------------


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def selected(resources: list[dict[str, Any]], selector: dict[str, str]) -> list[dict[str, Any]]:
    """The Deployments whose pods carry every label of `selector` (an empty one selects nothing here)."""
    return [
        d for d in of_kind(resources, "Deployment") if selector and selector.items() <= pod_labels(d).items()
    ]


def test_deployments_select_their_own_pods(resources: list[dict[str, Any]]) -> None:
    for deployment in of_kind(resources, "Deployment"):
        assert selected(resources, deployment["spec"]["selector"]["matchLabels"]) == [deployment]


def test_every_service_reaches_one_deployment_on_a_named_port(resources: list[dict[str, Any]]) -> None:
    for service in of_kind(resources, "Service"):
        name = service["metadata"]["name"]
        [deployment] = selected(resources, service["spec"]["selector"])
        ports = {
            p["name"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: no container port {port['targetPort']}"


def test_budgets_and_network_policies_select_pods_that_exist(resources: list[dict[str, Any]]) -> None:
    for budget in of_kind(resources, "PodDisruptionBudget"):
        assert selected(resources, budget["spec"]["selector"]["matchLabels"]), budget["metadata"]["name"]
    for policy in of_kind(resources, "NetworkPolicy"):
        sources = [source["podSelector"] for rule in policy["spec"]["ingress"] for source in rule["from"]]
        for selector in [policy["spec"]["podSelector"], *sources]:
            assert selected(resources, selector["matchLabels"]), policy["metadata"]["name"]


def test_the_autoscaler_alone_sets_the_apps_replicas(resources: list[dict[str, Any]]) -> None:
    [autoscaler] = of_kind(resources, "HorizontalPodAutoscaler")
    reference = autoscaler["spec"]["scaleTargetRef"]
    target = find(resources, reference["kind"], reference["name"])
    assert target is find(resources, "Deployment", "app")
    assert "replicas" not in target["spec"], "a fixed count in the Deployment would fight the HPA"
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert [metric["resource"]["name"] for metric in autoscaler["spec"]["metrics"]] == ["cpu"]


def test_rasa_is_reached_where_the_app_looks_for_it(resources: list[dict[str, Any]]) -> None:
    settings = find(resources, "ConfigMap", "infoopt-settings")["data"]
    url = urlsplit(settings["INFOOPT_RASA_URL"])
    service = find(resources, "Service", str(url.hostname))
    assert [port["port"] for port in service["spec"]["ports"]] == [url.port]
    assert container(resources, "rasa", "rasa")["ports"][0]["containerPort"] == url.port
    [policy] = of_kind(resources, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": url.port, "protocol": "TCP"}]


def test_every_key_reference_names_a_key_that_exists() -> None:
    resources = BUILDS["base"]  # the base still has the Secret example production leaves out
    sources = {("ConfigMap", c["metadata"]["name"]): set(c["data"]) for c in of_kind(resources, "ConfigMap")}
    sources |= {("Secret", s["metadata"]["name"]): set(s["stringData"]) for s in of_kind(resources, "Secret")}
    key_references = 0
    for each in containers(resources):
        for variable in each.get("env", []):
            source = variable.get("valueFrom", {})
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if field in source:
                    key_references += 1
                    keys = sources.get((kind, source[field]["name"]))
                    assert keys is not None, f"{each['name']}: no {kind} {source[field]['name']}"
                    assert source[field]["key"] in keys, (
                        f"{each['name']}: {kind} has no key {source[field]['key']}"
                    )
                    assert variable["name"] == source[field]["key"], "a setting keeps its name"
        for reference in each.get("envFrom", []):
            for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if field in reference:
                    assert (kind, reference[field]["name"]) in sources, f"{each['name']}: no {kind}"
    assert key_references >= 4, "the migration reads its few settings by key"


def test_the_migration_gets_only_what_it_needs() -> None:
    migrate = container(BUILDS["production"], "app", "migrate")
    assert "envFrom" not in migrate
    assert {variable["name"] for variable in migrate["env"]} == {
        "INFOOPT_ENV",
        "INFOOPT_DATABASE_URL",
        "INFOOPT_REDIS_URL",
        "INFOOPT_SECRET_KEY",
    }


# --- the manifests agree with the app -------------------------------------------------------------


def test_every_variable_set_is_a_setting_of_the_app(resources: list[dict[str, Any]]) -> None:
    known = set(setting_variables())
    assert {"INFOOPT_DATABASE_URL", "TELEGRAM_BOT_TOKEN", "TWILIO_AUTH_TOKEN"} <= known
    set_here = {variable["name"] for each in app_containers(resources) for variable in each.get("env", [])}
    for configmap in of_kind(resources, "ConfigMap"):
        set_here |= set(configmap["data"])
    for secret in of_kind(resources, "Secret"):
        set_here |= set(secret["stringData"])
    assert set_here, "nothing checked"
    assert set_here <= known, f"not settings of the app: {sorted(set_here - known)}"


def test_no_secret_sits_in_a_configmap(resources: list[dict[str, Any]]) -> None:
    secret = secret_variables()
    assert {"INFOOPT_SECRET_KEY", "TELEGRAM_WEBHOOK_SECRET", "TWILIO_AUTH_TOKEN"} <= secret
    for configmap in of_kind(resources, "ConfigMap"):
        assert not set(configmap["data"]) & secret, f"secrets in ConfigMap: {set(configmap['data']) & secret}"
        for key, value in configmap["data"].items():
            assert not re.search(r"://[^/@\s]*:[^/@\s]+@", value), f"{key} carries a password"
    for each in containers(resources):
        for variable in each.get("env", []):
            assert "value" not in variable or variable["name"] not in secret, (
                f"{variable['name']} written inline"
            )


def test_the_secret_example_has_every_secret() -> None:
    [example] = of_kind(BUILDS["base"], "Secret")
    # TWILIO_ACCOUNT_SID is no secret by itself, but it travels with its token (as in docker-compose).
    assert set(example["stringData"]) == secret_variables() | {"TWILIO_ACCOUNT_SID"}


def test_the_secret_example_cannot_start_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    resources = BUILDS["base"]
    settings = find(resources, "ConfigMap", "infoopt-settings")["data"]
    example = find(resources, "Secret", "infoopt-secrets")["stringData"]
    refused = _production_problems(monkeypatch, tmp_path, {**settings, **example})
    assert any("INFOOPT_SECRET_KEY" in problem for problem in refused), refused
    real = {key: f"a-real-{key.lower()}-9c4f1e2b7d5a3c8e6f0b1d4a" for key in example}
    real |= {
        "INFOOPT_DATABASE_URL": "postgresql://infoopt:pw@db:5432/infoopt",
        "INFOOPT_REDIS_URL": "redis://r:6379/0",
    }
    assert _production_problems(monkeypatch, tmp_path, {**settings, **real}) == [], (
        "complete with real secrets"
    )


def _production_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: dict[str, str]
) -> list[str]:
    """What the app's production check says about exactly this environment."""
    import os

    monkeypatch.chdir(tmp_path)  # no .env file
    for name in list(os.environ):
        if name.startswith(("INFOOPT_", "TELEGRAM_", "TWILIO_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    problems = settings.production_problems()
    if problems:
        with pytest.raises(InsecureConfiguration):
            check_production(settings)
    return problems


def test_probes_ask_the_paths_the_app_serves(resources: list[dict[str, Any]]) -> None:
    app = container(resources, "app", "app")
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    served = served_paths()
    for each in app_containers(resources):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "httpGet" in each.get(probe, {}):
                assert each[probe]["httpGet"]["path"] in served, f"{each['name']} {probe}"
    assert container(resources, "rasa", "rasa")["readinessProbe"]["httpGet"]["path"] == "/status"


def test_commands_are_real_infoopt_commands(resources: list[dict[str, Any]]) -> None:
    commands = [each["command"] for each in app_containers(resources) if each["command"][0] == "infoopt"]
    assert {" ".join(words[:2]) for words in commands} == {
        "infoopt serve",
        "infoopt worker",
        "infoopt migrate",
    }
    for words in commands:
        result = run_cli_help(words)
        assert result.exit_code == 0, f"{' '.join(words)}: {result.output}"
        assert re.search(rf"Usage: \S+ {words[1]} \[OPTIONS\]", result.output), result.output
    assert run_cli_help(["infoopt", "serve", "--wokers", "2"]).exit_code == 2
    assert run_cli_help(["infoopt", "migrations"]).exit_code == 2


def test_the_app_migrates_before_it_serves(resources: list[dict[str, Any]]) -> None:
    spec = find(resources, "Deployment", "app")["spec"]["template"]["spec"]
    assert [init["command"] for init in spec["initContainers"]] == [["infoopt", "migrate"]]
    assert spec["initContainers"][0]["image"] == app_image(resources)


def test_the_worker_is_alive_while_its_heartbeat_is_fresh(resources: list[dict[str, Any]]) -> None:
    worker = container(resources, "worker", "worker")
    heartbeat = worker["command"][worker["command"].index("--heartbeat") + 1]
    for probe in ("startupProbe", "livenessProbe"):
        script = worker[probe]["exec"]["command"]
        assert f"getmtime('{heartbeat}')" in script[-1]
    compose_check = COMPOSE["services"]["worker"]["healthcheck"]["test"]
    assert worker["livenessProbe"]["exec"]["command"] == compose_check[1:], "the same check as docker-compose"
    assert find(resources, "Deployment", "worker")["spec"]["replicas"] >= 2


# --- the manifests agree with the image -----------------------------------------------------------


def test_containers_run_as_the_images_users_on_a_read_only_root(resources: list[dict[str, Any]]) -> None:
    uid = int(dockerfile(r"useradd .*--uid (\d+)"))
    for spec in pod_specs(resources):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for each in spec.get("initContainers", []) + spec["containers"]:
            context = each["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, each["name"]
            assert context["readOnlyRootFilesystem"] is True, each["name"]
            assert context["capabilities"] == {"drop": ["ALL"]}, each["name"]
            if each["image"] == app_image(resources):
                assert context.get("runAsUser", spec["securityContext"]["runAsUser"]) == uid, each["name"]


def test_what_the_app_writes_is_a_mounted_volume(resources: list[dict[str, Any]]) -> None:
    data_dir = find(resources, "ConfigMap", "infoopt-settings")["data"]["INFOOPT_DATA_DIR"]
    for name in ("app", "worker"):
        each = container(resources, name, name)
        mounted = {mount["mountPath"] for mount in each["volumeMounts"]}
        assert {data_dir, "/tmp"} <= mounted, name  # noqa: S108 (an emptyDir, not a shared /tmp)
    worker = container(resources, "worker", "worker")
    heartbeat = worker["command"][worker["command"].index("--heartbeat") + 1]
    assert str(Path(heartbeat).parent) in {mount["mountPath"] for mount in worker["volumeMounts"]}


def test_ports_and_paths_are_the_images(resources: list[dict[str, Any]]) -> None:
    port = int(dockerfile(r"^EXPOSE (\d+)"))
    app = container(resources, "app", "app")
    assert app["ports"] == [{"name": "http", "containerPort": port}]
    assert app["command"][app["command"].index("--port") + 1] == str(port)
    workdir = dockerfile(r"^WORKDIR (\S+)")
    copy_step = container(resources, "rasa", "nlu-data")
    assert copy_step["image"] == app_image(resources)
    assert copy_step["command"][-2] == f"{workdir}/nlu_data/."
    assert "COPY nlu_data nlu_data" in DOCKERFILE


def test_rasa_is_trained_from_the_same_files_as_in_docker_compose(resources: list[dict[str, Any]]) -> None:
    compose = COMPOSE["services"]["rasa"]
    train = container(resources, "rasa", "train")
    serve = container(resources, "rasa", "rasa")
    assert train["image"] == serve["image"] == compose["image"]
    assert train["args"][:2] == ["train", "nlu"]
    model = train["args"][train["args"].index("--out") + 1] + "/"
    model += train["args"][train["args"].index("--fixed-model-name") + 1] + ".tar.gz"
    assert serve["args"][:2] == ["run", "--enable-api"]
    assert serve["args"][serve["args"].index("--model") + 1] == model
    shared = {m["name"] for m in train["volumeMounts"]} & {m["name"] for m in serve["volumeMounts"]}
    assert "home" in shared, "the trained model reaches the server through a shared volume"
    assert find(resources, "Deployment", "rasa")["spec"]["replicas"] >= 2


def test_every_container_has_requests_and_limits(resources: list[dict[str, Any]]) -> None:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for each in containers(resources):
        requests, limits = each["resources"]["requests"], each["resources"]["limits"]
        assert set(requests) == set(limits) == {"cpu", "memory"}, each["name"]
        request, limit = (
            int(value[:-2]) * units[value[-2:]] for value in (requests["memory"], limits["memory"])
        )
        assert request <= limit, each["name"]


# --- the production overlay -----------------------------------------------------------------------


def test_production_runs_a_released_image_everywhere() -> None:
    resources = BUILDS["production"]
    image = app_image(resources)
    assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], image
    assert {c["image"] for c in containers(resources) if "infoopt" in c["image"]} == {image}


def test_production_serves_its_public_address_over_tls() -> None:
    resources = BUILDS["production"]
    public = urlsplit(find(resources, "ConfigMap", "infoopt-settings")["data"]["INFOOPT_PUBLIC_URL"])
    assert public.scheme == "https"
    [ingress] = of_kind(resources, "Ingress")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [public.hostname]
    assert public.hostname in ingress["spec"]["tls"][0]["hosts"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "app", "port": {"name": "http"}}
    body_limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body_limit.removesuffix("m")) * 2**20 >= MAX_IMPORT_BYTES, "case imports get through"


def test_production_leaves_the_secret_to_the_clusters_secret_store() -> None:
    assert of_kind(BUILDS["production"], "Secret") == []
    assert find(BUILDS["production"], "ConfigMap", "infoopt-settings")["data"]["INFOOPT_TRUSTED_PROXIES"]
