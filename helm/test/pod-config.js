// Lays out what one pod of the rendered chart would see, so scripts/helm-check.sh can start the
// real binary with it: writes config.toml and the chart-generated Secrets' files under OUT_DIR,
// and prints the container's MESHMQ_* environment (downward-API fields and secret references
// given stand-in values, $(VAR) references expanded) and flags that move the mounted file paths
// into OUT_DIR, one `env NAME=value` or `flag --key=value` per line.
// usage: node pod-config.js --modules DIR RENDERED.yaml OUT_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [, , opt, modulesDir, rendered, outDir] = process.argv;
if (opt !== "--modules" || !outDir) {
  console.error("usage: pod-config.js --modules DIR RENDERED.yaml OUT_DIR");
  process.exit(2);
}
const YAML = createRequire(path.join(path.resolve(modulesDir), "package.json"))("yaml");
const objs = YAML.parseAllDocuments(fs.readFileSync(rendered, "utf8"))
  .map((d) => d.toJS())
  .filter(Boolean);
const sts = objs.find((o) => o.kind === "StatefulSet");
const container = sts.spec.template.spec.containers.find((c) => c.name === "meshmq");
const volumes = Object.fromEntries(sts.spec.template.spec.volumes.map((v) => [v.name, v]));
const byName = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);

const out = [];
// The config file: the ConfigMap key mounted at the --config path.
const configArg = container.args.find((a) => a.startsWith("--config="));
const configMount = container.volumeMounts.find((m) => m.mountPath === configArg.slice(9));
const cm = byName("ConfigMap", volumes[configMount.name].configMap.name);
fs.writeFileSync(path.join(outDir, "config.toml"), cm.data[configMount.subPath]);
// Secret volumes: their files under OUT_DIR/<volume>/, and every config path into the mount
// pointed there instead.
const config = cm.data[configMount.subPath];
for (const m of container.volumeMounts) {
  const vol = volumes[m.name];
  if (!vol || !vol.secret) continue; // the data volume comes from volumeClaimTemplates
  const secret = byName("Secret", vol.secret.secretName);
  if (!secret) throw new Error(`secret ${vol.secret.secretName} is not rendered by the chart`);
  const dir = path.join(outDir, m.name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(secret.data || {}))
    fs.writeFileSync(path.join(dir, k), Buffer.from(v, "base64"));
  let table = "";
  for (const line of config.split("\n")) {
    const header = line.match(/^\[(.+)\]$/);
    if (header) table = header[1];
    const kv = line.match(/^(\w+) = "(.*)"$/);
    if (kv && kv[2].startsWith(m.mountPath + "/"))
      out.push(`flag --${table}.${kv[1]}=${path.join(dir, kv[2].slice(m.mountPath.length + 1))}`);
  }
}
// Environment, in order, as the kubelet expands it.
const env = {};
const stand_in = { "metadata.name": `${sts.metadata.name}-0`, "metadata.namespace": "default",
                   "status.podIP": "127.0.0.1" };
for (const e of container.env || []) {
  let v;
  if (e.value !== undefined) v = e.value.replace(/\$\((\w+)\)/g, (all, n) => (n in env ? env[n] : all));
  else if (e.valueFrom && e.valueFrom.fieldRef) v = stand_in[e.valueFrom.fieldRef.fieldPath];
  else if (e.valueFrom && e.valueFrom.secretKeyRef) v = "stand-in-secret";
  if (v === undefined) throw new Error(`no stand-in value for env ${e.name}`);
  env[e.name] = v;
  out.push(`env ${e.name}=${v}`);
}
console.log(out.join("\n"));
