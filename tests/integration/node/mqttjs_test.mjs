// MQTT.js (npm `mqtt`) over WebSocket against a running broker: QoS 0/1/2 both ways, retained
// messages, MQTT 3.1 (subprotocol mqttv3.1), a large payload, and a publish for the caller to
// check from TCP. Usage: node mqttjs_test.mjs ws://127.0.0.1:PORT/mqtt TOPIC_PREFIX
// Prints one line per check; exits 0 only if all pass. Bounded by a 20 s overall timeout.
import mqtt from "mqtt";

const [url, prefix] = process.argv.slice(2);
if (!url || !prefix) {
  console.error("usage: node mqttjs_test.mjs WS_URL TOPIC_PREFIX");
  process.exit(2);
}
const overall = setTimeout(() => {
  console.error("FAIL: timed out after 20 s");
  process.exit(1);
}, 20000);

function connect(options) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    c.once("connect", (connack) => resolve({ c, connack }));
    c.once("error", reject);
    c.once("close", () => reject(new Error(`closed before CONNACK (${JSON.stringify(options)})`)));
  });
}

function expectMessages(client, n) {
  const got = [];
  return new Promise((resolve) => {
    client.on("message", (topic, payload, packet) => {
      got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
      if (got.length === n) resolve(got);
    });
  });
}

function check(cond, what) {
  if (!cond) throw new Error(what);
  console.log(`ok: ${what}`);
}

try {
  const { c: sub } = await connect({ clientId: "js-sub-" + process.pid, protocolVersion: 4 });
  const { c: pub } = await connect({ clientId: "js-pub-" + process.pid, protocolVersion: 4 });
  const { c: old, connack } = await connect({
    clientId: "js-31-" + process.pid,
    protocolId: "MQIsdp",
    protocolVersion: 3,
  });
  check(connack.returnCode === 0, "MQTT 3.1 client connected over WebSocket (subprotocol mqttv3.1)");

  await pub.publishAsync(`${prefix}/retained`, "kept", { qos: 1, retain: true });
  // Listening before subscribing: the retained message may arrive right with the SUBACK.
  const receiving = expectMessages(sub, 5);
  const granted = await sub.subscribeAsync(`${prefix}/#`, { qos: 2 });
  check(granted[0].qos === 2, "SUBACK granted QoS 2");

  const big = "x".repeat(200 * 1024);
  await pub.publishAsync(`${prefix}/q0`, "zero", { qos: 0 });
  await pub.publishAsync(`${prefix}/q1`, "one", { qos: 1 });
  await pub.publishAsync(`${prefix}/q2`, "two", { qos: 2 });
  await old.publishAsync(`${prefix}/big`, big, { qos: 1 });
  const got = await receiving;
  const byTopic = Object.fromEntries(got.map((m) => [m.topic.slice(prefix.length + 1), m]));
  check(byTopic.retained?.payload === "kept" && byTopic.retained.retain, "retained message on subscribe");
  check(byTopic.q0?.payload === "zero" && byTopic.q0.qos === 0, "QoS 0 delivered");
  check(byTopic.q1?.payload === "one" && byTopic.q1.qos === 1, "QoS 1 delivered");
  check(byTopic.q2?.payload === "two" && byTopic.q2.qos === 2, "QoS 2 delivered");
  check(byTopic.big?.payload.length === big.length, "200 KiB payload delivered");

  // For the caller's TCP subscriber.
  await pub.publishAsync(`${prefix}/to-tcp`, "from mqtt.js", { qos: 1 });
  await pub.publishAsync(`${prefix}/retained`, "", { qos: 1, retain: true });
  await Promise.all([sub.endAsync(), pub.endAsync(), old.endAsync()]);
  clearTimeout(overall);
  console.log("PASS");
} catch (e) {
  console.error("FAIL:", e.message);
  process.exit(1);
}
