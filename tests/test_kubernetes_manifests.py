"""deploy/kubernetes: the manifests validate against Kubernetes' own schemas (kubernetes-validate bundles them:
no network), and say what the README promises: a CronJob that never overlaps, state on a claim, secrets through
envFrom, the config from a ConfigMap that connector accepts, retries only for exit codes a retry can fix; and an
image that runs under an arbitrary UID with group 0 (OpenShift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from connector import outcome
from connector.config import load_config_text

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.30"  # podFailurePolicy is stable (GA) from 1.31 and on by default from 1.26


def load(name: str) -> dict[str, Any]:
    data = YAML(typ="safe").load((DEPLOY / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def manifests() -> dict[str, dict[str, Any]]:
    """Every resource kustomization.yaml applies, plus the example Secret, by kind."""
    names = [*load("kustomization.yaml")["resources"], "secret.example.yaml"]
    return {doc["kind"]: doc for doc in (load(n) for n in names)}


@pytest.mark.parametrize(
    "name", sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_each_manifest_validates_against_the_kubernetes_schema(name: str) -> None:
    # strict: an unknown or misspelt key (`concurencyPolicy`) is an error, as `kubectl apply --validate` says
    assert kubernetes_validate.validate(load(name), KUBERNETES, strict=True) == KUBERNETES


def test_the_validator_works_offline_and_catches_a_typo() -> None:
    cronjob = manifests()["CronJob"]
    cronjob["spec"]["concurencyPolicy"] = cronjob["spec"].pop("concurrencyPolicy")
    with pytest.raises(kubernetes_validate.ValidationError, match="concurencyPolicy"):
        kubernetes_validate.validate(cronjob, KUBERNETES, strict=True)


def test_the_cronjob_runs_one_at_a_time_on_the_claim_with_secrets_and_config() -> None:
    docs = manifests()
    cronjob, claim, config, secret = (
        docs["CronJob"],
        docs["PersistentVolumeClaim"],
        docs["ConfigMap"],
        docs["Secret"],
    )
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}

    assert (
        volumes[mounts["/state"]["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    )
    assert volumes[mounts["/config"]["name"]]["configMap"]["name"] == config["metadata"]["name"]
    assert mounts["/config"]["readOnly"] is True
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert "env" not in container  # nothing secret spelled out in the manifest
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "fsGroup" in pod["securityContext"] and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in mounts  # SQLite's temporary files, with the root file system read-only

    # the config in the ConfigMap is one connector accepts, reading the mounted file as the args say
    args = container["args"]
    assert args[:1] == ["run"] and args[args.index("-c") + 1] == "/config/connector.yaml"
    app = load_config_text(
        config["data"]["connector.yaml"],
        "configmap.yaml",
        base_dir=Path("/config"),
        environ={"VTIGER_URL": secret["stringData"]["VTIGER_URL"]},
    )
    # what is written lives on the claim (/config is read-only)
    assert app.state.path == "/state/state.sqlite"
    assert all(t.directory.startswith("/state/") for t in app.targets if t.type == "segment_files")
    # every credential the sources read from their env_prefix is a key of the Secret
    needed = {f"{s.env_prefix}{k}" for s in app.sources for k in ("USERNAME",)}
    assert needed <= set(secret["stringData"])


def test_backoff_fits_the_exit_codes() -> None:
    job = manifests()["CronJob"]["spec"]["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it
    rules = job["podFailurePolicy"]["rules"]
    fail_now = {code for r in rules if r["action"] == "FailJob" for code in r["onExitCodes"]["values"]}
    # a retry minutes later cannot fix these: a person must look, or the next schedule picks them up
    assert fail_now == {
        outcome.EXIT_CONFIG,
        outcome.EXIT_PARTIAL,
        outcome.EXIT_LOCKED,
        outcome.EXIT_BUDGET,
        outcome.EXIT_STATE,
        outcome.EXIT_MASS_CHANGE,
    }
    # an unreachable CRM (4) or a crash (1) is retried, a few times
    assert outcome.EXIT_UNREACHABLE not in fail_now and outcome.EXIT_CRASH not in fail_now
    assert 1 <= job["backoffLimit"] <= 3
    # a node drain or eviction (SIGTERM, exit 130) does not count against the limit
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules
    assert all(r["onExitCodes"]["containerName"] == "connector" for r in rules if "onExitCodes" in r)


def _final_stage() -> list[str]:
    """The Dockerfile's last stage, continuation lines joined, comments dropped."""
    lines: list[str] = []
    logical = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        logical += line.removesuffix("\\").strip() + " "
        if line.endswith("\\"):
            continue
        if logical.upper().startswith("FROM "):
            lines = []
        lines.append(logical.strip())
        logical = ""
    return lines


def test_the_image_runs_under_an_arbitrary_uid_with_group_0() -> None:
    # docker cannot run here: this reads the Dockerfile. OpenShift runs the image as a random UID in group 0,
    # and Kubernetes' runAsNonRoot can only check a numeric USER.
    stage = _final_stage()
    (user,) = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert user.isdigit() and int(user) != 0
    run = " ".join(line for line in stage if line.upper().startswith("RUN "))
    assert "chgrp -R 0 /state" in run and "chmod -R g=u /state" in run
    assert "--gid 0" in run  # the image's own user is in group 0 as well: one set of permissions for both
    cronjob_user = manifests()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "securityContext"
    ]
    assert cronjob_user["runAsUser"] == int(user) and cronjob_user["runAsGroup"] == 0
