// Validates rendered Kubernetes manifests against the Kubernetes API schemas, twice:
//   1. the JSON schemas of kubernetes-models (types, required fields, enums, formats);
//   2. TypeScript's excess-property check against the same models' types, which the schemas
//      cannot do (Kubernetes' OpenAPI allows unknown fields, the API server drops them), so a
//      misspelt field such as `readinesProbe` fails here instead of silently doing nothing.
// usage: node validate.js --modules DIR FILE.yaml...   (DIR holds node_modules from package.json)
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const args = process.argv.slice(2);
const at = args.indexOf("--modules");
if (at < 0 || !args[at + 1]) {
  console.error("usage: validate.js --modules DIR FILE.yaml...");
  process.exit(2);
}
const modulesDir = path.resolve(args[at + 1]);
const files = args.filter((_, i) => i !== at && i !== at + 1);
const req = createRequire(path.join(modulesDir, "package.json"));
const YAML = req("yaml");
const ts = req("typescript");

// apiVersion -> module prefix holding one model per kind.
function modelModule(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const problems = [];
const docs = [];
for (const file of files) {
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      problems.push(`${file}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const where = `${path.basename(file)} ${obj.kind}/${obj.metadata && obj.metadata.name}`;
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
      problems.push(`${where}: no apiVersion or kind`);
      continue;
    }
    const mod = modelModule(obj.apiVersion, obj.kind);
    let Model;
    try {
      Model = req(mod)[obj.kind];
    } catch (e) {
      problems.push(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
    }
    docs.push({ where, mod, kind: obj.kind, obj });
  }
}

// One TypeScript file: each manifest as a literal typed with its model's interface.
const dir = fs.mkdtempSync(path.join(modulesDir, "check-"));
try {
  const lines = [];
  const owner = []; // line number -> doc index
  docs.forEach((d, i) => {
    const body = `import type { I${d.kind} as T${i} } from ${JSON.stringify(d.mod)};\n` +
      `export const doc${i}: T${i} = ${JSON.stringify(d.obj, null, 2)};\n`;
    for (const l of body.split("\n")) {
      lines.push(l);
      owner.push(i);
    }
  });
  const tsFile = path.join(dir, "manifests.ts");
  fs.writeFileSync(tsFile, lines.join("\n"));
  const program = ts.createProgram([tsFile], {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    types: [],
  });
  for (const diag of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(diag.messageText, " ");
    if (diag.file && diag.start !== undefined && diag.file.fileName === tsFile) {
      const line = diag.file.getLineAndCharacterOfPosition(diag.start).line;
      problems.push(`${docs[owner[line]].where}: ${text} (line: ${lines[line].trim()})`);
    } else {
      problems.push(`typescript: ${text}`);
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

for (const p of problems) console.error(p);
console.log(`validate: ${docs.length} manifests, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
