#!/usr/bin/python3
"""One compare.sh run -> one line of runs.jsonl (bench JSON + what the script sampled), and a
one-line summary on stdout for the progress log."""
import argparse
import json
import math
import os
from array import array

# A rung is sustained when less than 0.1% of the expected deliveries are lost, the publishers got
# >= 90% of the offered rate out (QoS 1/2 acknowledgements or a full socket hold them back when the
# broker falls behind; the 10% leave room for the tool's own timer jitter, which matters at a few
# publishes per second), and deliveries kept pace: >= 95% of (publishes x subscribers per publish)
# arrived during the publishing phase, not later in the drain.
LOSS_MAX = 0.001
SENT_MIN = 0.90
DELIVERED_MIN = 0.95


# A stall of the VM delays the messages in flight when it begins, and those queued behind it until
# the broker has worked off the backlog (500 messages after 100 ms at 5,000/s: a few ms). Leaving
# out every message sent from 20 ms before a gap that stall-watch saw to 50 ms after it covers
# both. The window comes from stall-watch alone, never from the latencies, and is the same for
# both brokers.
BEFORE_GAP_NS = 20_000_000
AFTER_GAP_NS = 50_000_000


def outside_stalls(log_path, gaps):
    """Latency percentiles (us) of the messages in meshmq-bench's --latency-log that were not sent
    near a gap; None without the log."""
    samples = array("Q")
    try:
        with open(log_path, "rb") as f:
            samples.frombytes(f.read())
    except (OSError, ValueError):
        return None
    windows = [(g["at_ns"] - BEFORE_GAP_NS, g["at_ns"] + g["ms"] * 1e6 + AFTER_GAP_NS)
               for g in gaps]
    kept = sorted(samples[i + 1] for i in range(0, len(samples) - 1, 2)
                  if not any(lo <= samples[i] <= hi for lo, hi in windows))
    total = len(samples) // 2

    def pct(p):  # nearest rank
        return round(kept[max(0, math.ceil(p / 100 * len(kept)) - 1)] / 1e3, 1) if kept else None

    return {"count": len(kept), "left_out": total - len(kept), "p50": pct(50), "p99": pct(99),
            "p99_9": pct(99.9), "max": pct(100)}


def read_json(path):
    """The JSON document at path, or None when it is missing or cut short."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--runs", required=True)
    a.add_argument("--dir", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--scenario", required=True)
    a.add_argument("--broker", required=True)
    a.add_argument("--rate", type=float, required=True)
    a.add_argument("--role", required=True)
    a.add_argument("--rc", type=int, required=True)
    a.add_argument("--ready", type=int, required=True)
    a.add_argument("--broker-alive", type=int, required=True)
    a.add_argument("--clk-tck", type=float, required=True)
    a.add_argument("--cpu", type=float, nargs=3, required=True)       # ticks: ready, end of publishing, exit
    a.add_argument("--tool-cpu", type=float, nargs=2, required=True)  # ticks: ready, end of publishing
    a.add_argument("--t", type=float, nargs=3, required=True)         # seconds: same points
    a.add_argument("--rss", type=float, nargs=3, required=True)       # KiB: before, ready, end of holding
    a.add_argument("--runq", type=float, nargs=4, default=[0, 0, 0, 0])  # ns: broker, tool
    a.add_argument("--ctxsw", type=float, nargs=2, default=[0, -1])  # broker: ready, exit
    a.add_argument("--round", type=int, default=1)  # compare.sh --rounds
    a.add_argument("--port", type=int)
    a.add_argument("--args", default="")
    o = a.parse_args()

    bench = read_json(os.path.join(o.dir, "bench.json"))
    # stall-watch beside a latency run: the gaps in which the broker's or the tool's core ran
    # nothing at all (a stall of the VM, whatever the broker did).
    watch = read_json(os.path.join(o.dir, "stall-watch.json"))

    tck = o.clk_tck
    cpu_window = (o.cpu[2] - o.cpu[0]) / tck if o.ready and min(o.cpu) >= 0 else 0.0
    pub_wall = o.t[1] - o.t[0] if o.ready and o.t[1] > 0 else 0.0
    # -1: the process was gone when sampled
    cpu_pub = (o.cpu[1] - o.cpu[0]) / tck if o.ready and min(o.cpu[:2]) >= 0 else None
    tool_pub = (o.tool_cpu[1] - o.tool_cpu[0]) / tck if o.ready and min(o.tool_cpu) >= 0 \
        else None
    rec = {
        "name": o.name, "scenario": o.scenario, "broker": o.broker, "rate": o.rate,
        "role": o.role, "round": o.round, "rc": o.rc, "ready": bool(o.ready),
        "broker_alive": bool(o.broker_alive),
        "port": o.port, "bench_args": o.args, "dir": o.dir,
        "broker_cpu_s": round(cpu_window, 3),
        "broker_busy": round(cpu_pub / pub_wall, 3) if pub_wall > 0 and cpu_pub is not None
        else None,
        "tool_busy": round(tool_pub / pub_wall, 3) if pub_wall > 0 and tool_pub is not None
        else None,
        # share of the publishing phase the broker / the tool was runnable but not running
        "broker_runq": round((o.runq[1] - o.runq[0]) / 1e9 / pub_wall, 3)
        if pub_wall > 0 and min(o.runq[:2]) >= 0 else None,
        "tool_runq": round((o.runq[3] - o.runq[2]) / 1e9 / pub_wall, 3)
        if pub_wall > 0 and min(o.runq[2:]) >= 0 else None,
        "broker_ctxsw": int(o.ctxsw[1] - o.ctxsw[0]) if o.ready and min(o.ctxsw) >= 0 else None,
        "window_s": round(o.t[2] - o.t[0], 3) if o.ready else None,
        "rss_kib": {"before": o.rss[0], "ready": o.rss[1], "late": o.rss[2]},
        "ok": False, "why": [],
    }
    if watch is not None:
        rec["vm_gaps"] = watch.get("gaps", [])
        outside = outside_stalls(os.path.join(o.dir, "latency.bin"), rec["vm_gaps"])
        if outside is not None:
            rec["latency_outside_stalls_us"] = outside
    why = rec["why"]
    if not o.ready:
        why.append("no ready line")
    if not o.broker_alive:
        why.append("broker died")
    if bench is None:
        why.append("no JSON")
    else:
        conns = bench["connections"]
        rec["connections"] = conns["connected"]
        rec["connect_errors"] = conns["connect_errors"]
        rec["connections_lost"] = conns["lost"]
        if conns["connect_errors"] or conns["lost"] or conns["connected"] < conns["target"]:
            why.append("connections: %d/%d up, %d errors, %d lost" % (
                conns["connected"], conns["target"], conns["connect_errors"], conns["lost"]))
        sent, received = bench["sent"], bench["received"]
        expected = bench.get("expected") or 0
        lost = bench.get("lost") or 0
        delivered = received - (bench.get("duplicated") or 0)
        rec.update({
            "sent": sent, "received": received, "expected": expected, "lost": lost,
            "delivered": delivered, "duration_s": bench["duration_s"],
            "sent_per_s": bench["rates"]["sent_per_s"],
            "received_per_s": bench["rates"]["received_per_s"],
            "latency_us": bench["latency_us"],
            "loss": lost / expected if expected else 0.0,
            "per_publish": expected / sent if sent else None,
        })
        if o.role in ("throughput", "latency"):
            k = rec["per_publish"] or 0
            rec["offered_deliveries_per_s"] = o.rate * k
            if cpu_window > 0:
                rec["msgs_per_cpu_s"] = delivered / cpu_window
            if rec["broker_ctxsw"] is not None and delivered:
                rec["ctxsw_per_msg"] = rec["broker_ctxsw"] / delivered
            if expected == 0:
                why.append("nothing expected")
            if rec["loss"] >= LOSS_MAX:
                why.append("%.2f%% lost" % (100 * rec["loss"]))
            if rec["sent_per_s"] < SENT_MIN * o.rate:
                why.append("published {:,.0f}/s".format(rec["sent_per_s"]))
            if k and rec["received_per_s"] < DELIVERED_MIN * rec["sent_per_s"] * k:
                why.append("delivered {:,.0f}/s of {:,.0f}/s".format(
                    rec["received_per_s"], rec["sent_per_s"] * k))
        if o.role == "idle":
            n = conns["connected"]
            peak = max(o.rss[1], o.rss[2])
            rec["rss_per_conn_bytes"] = (peak - o.rss[0]) * 1024 / n if n else None
    rec["ok"] = not why
    with open(o.runs, "a") as f:
        f.write(json.dumps(rec) + "\n")

    # progress line (the script printed the run name already)
    if bench is None:
        print("FAILED: " + "; ".join(why))
        return
    if o.role == "idle":
        print("%d conns, RSS %.1f -> %.1f MiB, %s B/conn%s" % (
            rec["connections"], o.rss[0] / 1024, max(o.rss[1], o.rss[2]) / 1024,
            "%.0f" % rec["rss_per_conn_bytes"] if rec["rss_per_conn_bytes"] else "-",
            "" if rec["ok"] else "  [" + "; ".join(why) + "]"))
        return
    lat = rec["latency_us"]
    def pct(x):
        return "-" if x is None else "%.0f%%" % (100 * x)
    gaps = "".join(" | core %d stopped %.0f ms" % (g["cpu"], g["ms"])
                   for g in rec.get("vm_gaps", []))
    if rec.get("vm_gaps") and rec.get("latency_outside_stalls_us"):
        gaps += " | p99 outside them %.0fus" % (rec["latency_outside_stalls_us"]["p99"] or 0)
    print("sent %.0f/s recv %.0f/s loss %.3f%% | broker %.2f CPU-s, %s busy, %s msgs/CPU-s, "
          "%s context switches/msg "
          "| tool %s busy | waited for CPU: broker %s tool %s | p50 %.0fus p99 %.0fus%s%s" % (
              rec["sent_per_s"], rec["received_per_s"], 100 * rec["loss"], cpu_window,
              pct(rec["broker_busy"]),
              "%.0f" % rec["msgs_per_cpu_s"] if "msgs_per_cpu_s" in rec else "-",
              "%.2f" % rec["ctxsw_per_msg"] if "ctxsw_per_msg" in rec else "-",
              pct(rec["tool_busy"]), pct(rec["broker_runq"]), pct(rec["tool_runq"]), lat["p50"] or 0, lat["p99"] or 0,
              gaps, "" if rec["ok"] else "  [not sustained: " + "; ".join(why) + "]"))


if __name__ == "__main__":
    main()
