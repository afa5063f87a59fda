// What the operator story relies on, checked in the chart rendered with ci/full-values.yaml
// (every feature on) and ci/default-values.yaml: scaling, DNS discovery, probes, draining,
// persistence, shutdown timing, security, monitoring.
// usage: node chart-facts.js --modules DIR FULL.yaml DEFAULT.yaml CONFIG_CHANGED.yaml
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [, , opt, modulesDir, fullFile, defaultFile, changedFile] = process.argv;
if (opt !== "--modules" || !changedFile) {
  console.error("usage: chart-facts.js --modules DIR FULL.yaml DEFAULT.yaml CONFIG_CHANGED.yaml");
  process.exit(2);
}
const YAML = createRequire(path.join(path.resolve(modulesDir), "package.json"))("yaml");
const load = (f) => YAML.parseAllDocuments(fs.readFileSync(f, "utf8")).map((d) => d.toJS()).filter(Boolean);
const problems = [];
const expect = (what, ok) => ok || problems.push(what);

function facts(label, objs) {
  const one = (kind, pred = () => true) => objs.find((o) => o.kind === kind && pred(o));
  const sts = one("StatefulSet");
  const pod = sts.spec.template.spec;
  const c = pod.containers[0];
  const headless = one("Service", (s) => s.spec.clusterIP === "None");
  const lb = one("Service", (s) => s.spec.clusterIP !== "None");
  const config = one("ConfigMap", (m) => "config.toml" in m.data).data["config.toml"];
  const tomlValue = (table, key) => {
    const m = config.match(new RegExp(`\\[${table.replace(".", "\\.")}\\]\\n(?:[^\\[].*\\n)*?${key} = (.*)`));
    return m && m[1];
  };
  const fqdn = `${headless.metadata.name}.${sts.metadata.namespace || "mqtt"}.svc.cluster.local`;
  const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
  const f = (what) => `${label}: ${what}`;

  expect(f("podManagementPolicy is Parallel"), sts.spec.podManagementPolicy === "Parallel");
  expect(f("serviceName is the headless service"), sts.spec.serviceName === headless.metadata.name);
  expect(f("headless service publishes not-ready pods"), headless.spec.publishNotReadyAddresses === true);
  expect(f("cluster.dns_name is the headless FQDN"), tomlValue("cluster", "dns_name") === JSON.stringify(fqdn));
  expect(f("node.name comes from the pod name"),
    env.MESHMQ_NODE__NAME && env.MESHMQ_NODE__NAME.valueFrom.fieldRef.fieldPath === "metadata.name");
  expect(f("cluster.advertise is <pod>.<headless FQDN>:<cluster port>"),
    env.MESHMQ_CLUSTER__ADVERTISE && env.MESHMQ_CLUSTER__ADVERTISE.value ===
      `$(MESHMQ_NODE__NAME).${fqdn}:${tomlValue("cluster", "port")}`);
  expect(f("cluster secret from a Secret"), env.MESHMQ_CLUSTER__SECRET && env.MESHMQ_CLUSTER__SECRET.valueFrom.secretKeyRef);
  expect(f("readiness probe on /readyz"), c.readinessProbe.httpGet.path === "/readyz");
  expect(f("liveness probe on /healthz"), c.livenessProbe.httpGet.path === "/healthz");
  expect(f("probes on the configured http.port"),
    c.ports.find((p) => p.name === "http").containerPort === Number(tomlValue("http", "port")));
  const pdb = one("PodDisruptionBudget");
  expect(f("PDB allows one pod down"), pdb && pdb.spec.maxUnavailable === 1);
  expect(f("pod anti-affinity"), pod.affinity && pod.affinity.podAntiAffinity);
  const dataMount = c.volumeMounts.find((m) => m.name === "data");
  expect(f("data volume from volumeClaimTemplates"), sts.spec.volumeClaimTemplates[0].metadata.name === "data");
  expect(f("data volume mounted at node.data_dir"), JSON.stringify(dataMount.mountPath) === tomlValue("node", "data_dir"));
  const grace = Number(tomlValue("node", "shutdown_grace").replace(/"|s/g, ""));
  const preStop = c.lifecycle ? Number(c.lifecycle.preStop.exec.command[1]) : 0;
  expect(f("preStop + node.shutdown_grace fit in terminationGracePeriodSeconds"),
    preStop + grace < pod.terminationGracePeriodSeconds);
  expect(f("config passed with --config"), c.args.includes("--config=/etc/meshmq/config.toml"));
  expect(f("config checksum annotation"), /^[0-9a-f]{64}$/.test(sts.spec.template.metadata.annotations["checksum/config"]));
  expect(f("non-root"), pod.securityContext.runAsNonRoot === true);
  expect(f("read-only root file system"), c.securityContext.readOnlyRootFilesystem === true);
  expect(f("resources set"), c.resources && c.resources.requests);
  return { sts, lb, one };
}

const full = facts("full-values", load(fullFile));
const lbPorts = full.lb.spec.ports.map((p) => p.port).sort();
expect(`full-values: LoadBalancer serves 1883, 8083, 8084 and 8883 (has ${lbPorts})`,
  full.lb.spec.type === "LoadBalancer" && JSON.stringify(lbPorts) === JSON.stringify([1883, 8083, 8084, 8883]));
expect("full-values: 5 replicas", full.sts.spec.replicas === 5);
const sm = full.one("ServiceMonitor");
expect("full-values: ServiceMonitor scrapes /metrics on the http port", sm && sm.spec.endpoints[0].port === "http" &&
  sm.spec.endpoints[0].path === "/metrics");
const dash = full.one("ConfigMap", (m) => "meshmq.json" in m.data);
expect("full-values: dashboard ConfigMap labelled grafana_dashboard",
  dash && dash.metadata.labels.grafana_dashboard === "1" && JSON.parse(dash.data["meshmq.json"]).panels.length > 0);
const tlsVol = full.sts.spec.template.spec.volumes.find((v) => v.name === "tls");
expect("full-values: TLS certificates from a Secret", tlsVol && tlsVol.secret);
const authVol = full.sts.spec.template.spec.volumes.find((v) => v.name === "auth");
expect("full-values: password and ACL files from a Secret", authVol && authVol.secret);

const dflt = facts("default-values", load(defaultFile));
const changed = load(changedFile).find((o) => o.kind === "StatefulSet");
expect("a config change changes the pods' checksum (rolls them)",
  changed.spec.template.metadata.annotations["checksum/config"] !==
    dflt.sts.spec.template.metadata.annotations["checksum/config"]);

for (const p of problems) console.error("chart-facts:", p);
console.log(`chart-facts: ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
