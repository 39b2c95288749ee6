"""Checks deploy/ for its essentials without pulling or running anything: compose.yaml (the
services, images, commands, ports, the JetStream flag, mounted files that exist), the Helm chart
(Chart.yaml, values.yaml, and every template rendered here for the plain `{{ .Values.x }}` /
`{{ .Release.Name }}` it uses — any other template expression is refused — then parsed as YAML
and checked: images, probes on /readyz, ports, the projector, HPA, PDB, NATS with --jetstream),
and the Dockerfile (a last stage from scratch, a non-root user). Where `helm` exists it also runs
`helm lint` and `helm template`; it is not packaged for Debian 12, so CI has none.

    $JONO_PYTHON_VENV/bin/python scripts/deploy-check.py
"""

import pathlib
import re
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
    return condition


def compose():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    for name in ["postgres", "nats", "jono-a", "jono-b", "jono-projector", "nginx"]:
        if not check(name in services, f"compose: no service {name}"):
            continue
        check(services[name].get("image"), f"compose: {name} has no image")
    check("--jetstream" in services["nats"]["command"], "compose: NATS without --jetstream")
    for name, command in [("jono-a", "serve"), ("jono-b", "serve"), ("jono-projector", "project")]:
        service = services[name]
        check(service["command"] == [command], f"compose: {name} does not run jono {command}")
        env = service["environment"]
        check(env["JONO_DATABASE_URL"].startswith("postgres://"), f"compose: {name} without Postgres")
        check(env["JONO_NATS_URL"] == "nats://nats:4222", f"compose: {name} without NATS")
        build = service["build"]
        check((DEPLOY / build["context"] / build["dockerfile"]).exists(), f"compose: {name}'s Dockerfile is missing")
    for name in ["jono-a", "jono-b"]:
        check(services[name]["environment"]["JONO_TRUSTED_PROXIES"], f"compose: {name} trusts no proxy")
        check("ports" not in services[name], f"compose: {name} is published around nginx")
    check(services["nginx"]["ports"] == ["8080:80"], "compose: nginx is not published on 8080")
    for mount in services["nginx"]["volumes"]:
        source = mount.split(":")[0]
        check((DEPLOY / source).exists(), f"compose: nginx mounts missing {source}")
    upstream = (DEPLOY / "nginx" / "upstream.conf").read_text()
    for name in ["jono-a", "jono-b"]:
        check(f"server {name}:8080" in upstream, f"nginx: {name} is not an upstream")


def lookup(values, path):
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def render(text, values, where):
    def substitute(match):
        expression = match.group(1).strip()
        if expression == ".Release.Name":
            return "jono"
        if expression.startswith(".Values."):
            try:
                value = lookup(values, expression[len(".Values."):])
            except KeyError:
                failures.append(f"helm: {where} uses {expression}, which values.yaml lacks")
                return "MISSING"
            return str(value)
        failures.append(f"helm: {where} uses {{{{ {expression} }}}}, which this check cannot render")
        return "UNRENDERED"

    return re.sub(r"\{\{(.*?)\}\}", substitute, text)


def chart():
    base = DEPLOY / "helm" / "jono"
    meta = yaml.safe_load((base / "Chart.yaml").read_text())
    check(meta.get("apiVersion") == "v2", "helm: Chart.yaml is not apiVersion v2")
    check(meta.get("name") == "jono" and meta.get("version"), "helm: Chart.yaml lacks name or version")
    values = yaml.safe_load((base / "values.yaml").read_text())
    objects = []
    for template in sorted((base / "templates").glob("*.yaml")):
        rendered = render(template.read_text(), values, template.name)
        objects.extend(doc for doc in yaml.safe_load_all(rendered) if doc)
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    gateway = deployments.get("jono-gateway")
    projector = deployments.get("jono-projector")
    if check(gateway, "helm: no gateway Deployment"):
        spec = gateway["spec"]["template"]["spec"]
        container = spec["containers"][0]
        check(container["args"] == ["serve"], "helm: the gateway does not run jono serve")
        check(container["image"] == f"{values['image']['repository']}:{values['image']['tag']}",
              "helm: the gateway's image is not the values' image")
        check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "helm: no readiness on /readyz")
        check(container["livenessProbe"]["httpGet"]["path"] == "/healthz", "helm: no liveness on /healthz")
        check({"name": "http", "containerPort": 8080} in container["ports"], "helm: the gateway's port is not 8080")
        check(isinstance(gateway["spec"]["replicas"], int), "helm: the gateway's replicas is not a number")
        check(spec["securityContext"]["runAsNonRoot"] is True, "helm: the gateway may run as root")
        names = {env["name"] for env in container["env"]}
        check({"JONO_DATABASE_URL", "JONO_NATS_URL"} <= names, "helm: the gateway lacks Postgres or NATS")
        labels = gateway["spec"]["template"]["metadata"]["labels"]
        for kind in ["PodDisruptionBudget", "Service"]:
            for obj in (o for o in by_kind.get(kind, []) if o["metadata"]["name"] == "jono-gateway"):
                selector = obj["spec"]["selector"]
                selector = selector.get("matchLabels", selector)
                check(all(labels.get(k) == v for k, v in selector.items()),
                      f"helm: the {kind}'s selector misses the gateway's pods")
    if check(projector, "helm: no projector Deployment"):
        check(projector["spec"]["template"]["spec"]["containers"][0]["args"] == ["project"],
              "helm: the projector does not run jono project")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    check(hpas and hpas[0]["spec"]["scaleTargetRef"]["name"] == "jono-gateway", "helm: no HPA on the gateway")
    check(hpas and isinstance(hpas[0]["spec"]["minReplicas"], int), "helm: the HPA's bounds are not numbers")
    check(by_kind.get("PodDisruptionBudget"), "helm: no PodDisruptionBudget")
    check(any(o["metadata"]["name"] == "jono-gateway" for o in by_kind.get("Service", [])),
          "helm: no Service for the gateway")
    nats = by_kind.get("StatefulSet", [])
    check(nats and "--jetstream" in nats[0]["spec"]["template"]["spec"]["containers"][0]["args"],
          "helm: NATS is not started with --jetstream")
    if shutil.which("helm"):
        for args in (["lint", str(base)], ["template", "jono", str(base)]):
            run = subprocess.run(["helm", *args], capture_output=True, text=True)
            check(run.returncode == 0, f"helm {args[0]}: {run.stderr.strip()}")


def dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    check(stages and stages[-1] == "scratch", "Dockerfile: the last stage is not from scratch")
    last = text[text.rindex("FROM"):]
    user = re.search(r"^USER\s+(\S+)", last, re.M)
    check(user and not user.group(1).startswith("0") and user.group(1) != "root", "Dockerfile: runs as root")
    check('ENTRYPOINT ["/usr/local/bin/jono"]' in last, "Dockerfile: the entry point is not jono")
    check("image-root.sh" in text, "Dockerfile: the root file system is not image-root.sh's")


compose()
chart()
dockerfile()
for failure in failures:
    print(failure, file=sys.stderr)
if failures:
    sys.exit(1)
print("deploy/: compose.yaml, the Helm chart and the Dockerfile have their essentials")
