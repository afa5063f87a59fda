#!/usr/bin/python3
"""runs.jsonl (from compare.sh) -> the comparison table, on stdout and as markdown (--out)."""
import argparse
import json
from collections import OrderedDict

from record import AFTER_GAP_NS, BEFORE_GAP_NS

BROKERS = ("mosquitto", "meshmq")
TARGET_THROUGHPUT = 1.5


def num(x, digits=0):
    if x is None:
        return "-"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, digits)


def ratio(a, b):
    """meshmq / mosquitto"""
    if a is None or b is None or a == 0:
        return None
    return b / a


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def merge_rounds(recs, rounds):
    """The runs of one (scenario, broker, rate) in several rounds -> one record of their medians.
    A rung is sustained when it was in most rounds: a round that stopped climbing below it did
    not sustain it either."""
    if rounds == 1:
        return recs[0]
    m = dict(recs[0])
    for key in ("msgs_per_cpu_s", "broker_busy", "received_per_s", "loss",
                "rss_per_conn_bytes"):
        v = median([r.get(key) for r in recs])
        if v is None:
            m.pop(key, None)
        else:
            m[key] = v
    for key in ("latency_us", "latency_outside_stalls_us", "rss_kib"):
        parts = [r[key] for r in recs if r.get(key)]
        if parts:
            m[key] = {k: median([p.get(k) for p in parts]) for k in parts[0]}
    conns = [r["connections"] for r in recs if r.get("connections") is not None]
    if conns:
        m["connections"] = min(conns)
    n_ok = sum(1 for r in recs if r["ok"])
    m["ok"] = 2 * n_ok > rounds
    m["why"] = [] if m["ok"] else ["sustained in %d of %d rounds" % (n_ok, rounds)] + next(
        (r["why"] for r in recs if not r["ok"]), [])
    return m


def describe(sid, o):
    if sid.startswith("fanin@"):
        return "fan-in QoS %s: 16 pub -> 1 sub on `bench/fanin/+`" % sid[-1]
    if sid == "fanout":
        return "fan-out QoS 0: 1 pub -> 1,000 subs"
    if sid == "pairs":
        return "pairs QoS 0: {:,} x `dev/%i/temp` + 1 `dev/+/temp` ({:,} conns)".format(
            o.pairs, 2 * o.pairs + 1)
    if sid.startswith("latency@"):
        return "latency QoS %s: 10 pairs" % sid[-1]
    if sid == "idle":
        return "idle: {:,} connections".format(o.conns)
    return sid


def rate_label(rec):
    r = rec["rate"]
    k = rec.get("per_publish") or 1
    if abs(k - 1) < 1e-9:
        return "{:,.0f} msg/s".format(r)
    return "{:,.0f} pub/s = {:,.0f} deliveries/s".format(r, r * k)


def short_why(rec):
    return "; ".join(rec["why"])


def throughput_rows(sid, runs, notes):
    rows = []
    by = {b: {r["rate"]: r for r in runs if r["broker"] == b} for b in BROKERS}
    rates = sorted(set(by["mosquitto"]) | set(by["meshmq"]))
    common = [r for r in rates if all(r in by[b] and by[b][r]["ok"] for b in BROKERS)]
    headline = None

    def cell(rec):
        if rec is None:
            return "-"
        if "msgs_per_cpu_s" not in rec:
            return "FAILED (%s)" % short_why(rec)
        s = num(rec["msgs_per_cpu_s"])
        if rec.get("broker_busy") is not None:
            s += " (CPU %.0f%%)" % (100 * rec["broker_busy"])
        if not rec["ok"]:
            s += " not sustained: " + short_why(rec)
        return s

    if common:
        top = common[-1]
        a, b = by["mosquitto"][top], by["meshmq"][top]
        headline = ratio(a["msgs_per_cpu_s"], b["msgs_per_cpu_s"])
        rows.append(("**msgs per broker CPU-s at the top rate both sustain (%s)**" % rate_label(a),
                     num(a["msgs_per_cpu_s"]), num(b["msgs_per_cpu_s"]), fmt_ratio(headline)))
    else:
        notes.append("%s: no rung sustained by both brokers" % sid)
    for r in rates:
        a, b = by["mosquitto"].get(r), by["meshmq"].get(r)
        any_rec = a or b
        ra = ratio(a.get("msgs_per_cpu_s") if a else None, b.get("msgs_per_cpu_s") if b else None)
        rows.append(("msgs per broker CPU-s at %s" % rate_label(any_rec), cell(a), cell(b),
                     fmt_ratio(ra)))
    # Highest sustained rung.
    best = {}
    for br in BROKERS:
        recs = [by[br][r] for r in sorted(by[br])]
        oks = [x for x in recs if x["ok"]]
        fails = [x for x in recs if not x["ok"]]
        if not oks:
            best[br] = (None, "none sustained")
            continue
        top = oks[-1]
        text = num(top["received_per_s"]) + " deliveries/s"
        if not fails:
            text = ">= " + text + " (top of the ladder)"
        else:
            f = fails[0]
            text += " (at {:,.0f} pub/s: {})".format(f["rate"], short_why(f))
        best[br] = (top["received_per_s"], text)
    rows.append(("highest sustained rung (loss < 0.1%, deliveries keep pace)",
                 best["mosquitto"][1], best["meshmq"][1],
                 fmt_ratio(ratio(best["mosquitto"][0], best["meshmq"][0]))))
    return rows, headline


def latency_rows(sid, runs):
    by = {r["broker"]: r for r in runs}
    a, b = by.get("mosquitto"), by.get("meshmq")
    rows = []
    any_rec = a or b
    rows.append(("offered rate", rate_label(any_rec), rate_label(any_rec), ""))
    for key, label in (("p50", "p50 latency, us"), ("p99", "p99 latency, us"),
                       ("p99_9", "p99.9 latency, us")):
        va = a["latency_us"][key] if a and "latency_us" in a else None
        vb = b["latency_us"][key] if b and "latency_us" in b else None
        rows.append((label + " (lower is better)", num(va), num(vb), fmt_ratio(ratio(va, vb))))
    la = a.get("loss") if a else None
    lb = b.get("loss") if b else None
    rows.append(("loss", "-" if la is None else "%.3f%%" % (100 * la),
                 "-" if lb is None else "%.3f%%" % (100 * lb), ""))
    ca = a.get("msgs_per_cpu_s") if a else None
    cb = b.get("msgs_per_cpu_s") if b else None
    rows.append(("msgs per broker CPU-s", num(ca), num(cb), fmt_ratio(ratio(ca, cb))))
    p99 = (a["latency_us"]["p99"] if a and "latency_us" in a else None,
           b["latency_us"]["p99"] if b and "latency_us" in b else None)
    return rows + outside_rows(a, b), p99


def outside_p99(rs):
    """(Mosquitto's, meshmq's) p99 outside the VM's stalls; None where a run has no latency log."""
    by = {r["broker"]: r.get("latency_outside_stalls_us") for r in rs}
    return tuple((by.get(br) or {}).get("p99") for br in BROKERS)


def outside_rows(a, b):
    oa = a.get("latency_outside_stalls_us") if a else None
    ob = b.get("latency_outside_stalls_us") if b else None
    if not oa and not ob:
        return []
    rows = []
    for key, label in (("p99", "p99 latency outside the VM's stalls, us"),
                       ("p99_9", "p99.9 latency outside the VM's stalls, us")):
        va, vb = (oa or {}).get(key), (ob or {}).get(key)
        rows.append((label + " (lower is better)", num(va), num(vb), fmt_ratio(ratio(va, vb))))

    def share(o):
        n = o["count"] + o["left_out"] if o else 0
        return "%.1f%%" % (100 * o["left_out"] / n) if n else "-"

    rows.append(("messages left out: sent from %d ms before to %d ms after a stall" % (
        BEFORE_GAP_NS // 1_000_000, AFTER_GAP_NS // 1_000_000), share(oa), share(ob), ""))
    return rows


# The benchmark VM sometimes stops running one of its cores for 50-100 ms (README "Rounds"). A
# latency run has such a stall when stall-watch, beside it, saw the broker's or the tool's core run
# nothing for 20 ms or more; results from before stall-watch only have the slowest message (>= 20
# ms) to go by, which cannot tell a stall of the VM from one of the broker.
STALL_US = 20000
MIN_CLEAN_RUNS = 3  # per broker, to judge the p99 on the runs without a stall


def vm_stalled(r):
    if "vm_gaps" in r:
        return bool(r["vm_gaps"])
    return slow(r)


def slow(r):
    return (r["latency_us"].get("max") or 0) >= STALL_US


def stall_rows(recs):
    """The latency runs of several rounds, by broker -> rows: how many had a stall of the VM, and
    the median p99 of those without one; and those two medians (None where too few)."""
    counts, clean, enough, own = {}, {}, {}, {}
    rs_all = [r for br in BROKERS for r in recs.get(br, []) if r.get("latency_us")]
    watched = [r for r in rs_all if "vm_gaps" in r]
    for br in BROKERS:
        rs = [r for r in recs.get(br, []) if r.get("latency_us")]
        ok = [r for r in rs if not vm_stalled(r)]
        counts[br] = "%d of %d" % (len(rs) - len(ok), len(rs))
        clean[br] = median([r["latency_us"]["p99"] for r in ok])
        enough[br] = len(ok) >= MIN_CLEAN_RUNS
        own[br] = "%d of %d" % (sum(1 for r in ok if slow(r) and "vm_gaps" in r), len(ok))
    if len(watched) == len(rs_all):
        how = "stall-watch: a core ran nothing for >= %d ms" % (STALL_US // 1000)
    elif not watched:
        how = "slowest message >= %d ms" % (STALL_US // 1000)
    else:
        how = "stall-watch, or the slowest message >= %d ms where it did not run" % (
            STALL_US // 1000)
    rows = [("runs with a stall of the VM (%s)" % how, counts["mosquitto"], counts["meshmq"], "")]
    if watched:
        rows.append(("runs without one whose slowest message took >= %d ms" % (STALL_US // 1000),
                     own["mosquitto"], own["meshmq"], ""))
    rows.append(("p99 latency of the runs without one (median), us (lower is better)",
                 num(clean["mosquitto"]), num(clean["meshmq"]),
                 fmt_ratio(ratio(clean["mosquitto"], clean["meshmq"]))))
    judged = all(enough.values())
    return rows, (clean["mosquitto"], clean["meshmq"]) if judged else (None, None)


def idle_rows(runs):
    by = {r["broker"]: r for r in runs}
    a, b = by.get("mosquitto"), by.get("meshmq")
    rows = []

    def mib(rec, key):
        if rec is None:
            return None
        v = rec["rss_kib"][key] if key != "peak" else max(rec["rss_kib"]["ready"],
                                                          rec["rss_kib"]["late"])
        return v / 1024

    rows.append(("connected", num(a.get("connections") if a else None),
                 num(b.get("connections") if b else None), ""))
    rows.append(("broker RSS before connecting, MiB", num(mib(a, "before"), 1),
                 num(mib(b, "before"), 1), ""))
    rows.append(("broker RSS with the connections up, MiB", num(mib(a, "peak"), 1),
                 num(mib(b, "peak"), 1), ""))
    va = a.get("rss_per_conn_bytes") if a else None
    vb = b.get("rss_per_conn_bytes") if b else None
    rows.append(("RSS per idle connection, bytes (lower is better)", num(va), num(vb),
                 fmt_ratio(ratio(va, vb))))
    return rows, (va, vb)


def render(header, rows, targets, notes):
    cols = ("scenario", "metric", "mosquitto", "meshmq", "meshmq/mosquitto")
    out = []
    for line in header:
        out.append("- " + line)
    out.append("")
    out.append("| " + " | ".join(cols) + " |")
    out.append("| " + " | ".join("---" for _ in cols) + " |")
    for r in rows:
        out.append("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
    out.append("")
    if targets:
        out.append("Targets (meshmq >= %.1fx msgs per broker CPU-s on each throughput scenario, "
                   "lower p99 at the fixed rate, no more RSS per idle connection):"
                   % TARGET_THROUGHPUT)
        out.append("")
        for t in targets:
            out.append("- " + t)
        out.append("")
    for n in notes:
        out.append("Note: " + n)
    return "\n".join(out) + "\n"


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--runs", required=True)
    a.add_argument("--header", required=True)
    a.add_argument("--out")
    a.add_argument("--duration", type=float)
    a.add_argument("--conns", type=int)
    a.add_argument("--pairs", type=int)
    a.add_argument("--rounds", type=int, default=1)
    a.add_argument("--control", help="loopback-echo results, one JSON line a round")
    o = a.parse_args()

    with open(o.runs) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    with open(o.header) as f:
        header = [line.rstrip("\n") for line in f if line.strip()]

    # A run repeated because of other load on the machine replaces the earlier one.
    latest = OrderedDict()
    for r in runs:
        latest[(r["scenario"], r["broker"], r["rate"], r.get("round", 1))] = r
    repeated = len(runs) - len(latest)
    runs = list(latest.values())
    same = OrderedDict()  # (scenario, broker, rate) -> its runs, one a round
    by_round = OrderedDict()  # round -> scenario -> runs
    for r in runs:
        same.setdefault((r["scenario"], r["broker"], r["rate"]), []).append(r)
        by_round.setdefault(r.get("round", 1), OrderedDict()).setdefault(
            r["scenario"], []).append(r)
    rounds = max(o.rounds, len(by_round))
    groups = OrderedDict()
    for (sid, _, _), rs in same.items():
        groups.setdefault(sid, []).append(merge_rounds(rs, rounds))

    def per_round(sid, figure):
        """ '' for one round, else ' (rounds: a, b, c)' with each round's figure."""
        if rounds == 1:
            return ""
        figs = [figure(g[sid]) if sid in g else "-" for g in by_round.values()]
        return " (rounds: %s)" % ", ".join(figs)

    def round_head(rs):
        return fmt_ratio(throughput_rows("", rs, [])[1])

    def round_p99(rs):
        pa, pb = latency_rows("", rs)[1]
        return "%s vs %s" % (num(pa), num(pb))

    def round_outside(rs):
        pa, pb = outside_p99(rs)
        return "%s vs %s" % (num(pa), num(pb))

    def round_idle(rs):
        va, vb = idle_rows(rs)[1]
        return "%s vs %s" % (num(va), num(vb))

    rows, targets, notes = [], [], []
    med = "median " if rounds > 1 else ""
    for sid, rs in groups.items():
        label = describe(sid, o)
        role = rs[0]["role"]
        if role == "throughput":
            srows, head = throughput_rows(sid, rs, notes)
            if head is not None:
                targets.append("%s: %s%.2fx msgs per broker CPU-s%s -> %s" % (
                    label, med, head, per_round(sid, round_head),
                    "met" if head >= TARGET_THROUGHPUT else "MISSED"))
        elif role == "latency":
            srows, (pa, pb) = latency_rows(sid, rs)
            ca = cb = None
            if rounds > 1:
                recs = {br: same.get((sid, br, rs[0]["rate"]), []) for br in BROKERS}
                extra, (ca, cb) = stall_rows(recs)
                srows += extra
            oa, ob = outside_p99(rs)
            if oa is not None and ob is not None:
                # Every message measured outside the stalls stall-watch saw: judge on those. Both
                # brokers sit near the machine's own tail here, so a lower median must also be
                # lower in most rounds: a 1 us lead that loses most rounds is a tie.
                pairs = [outside_p99(g[sid]) for g in by_round.values() if sid in g]
                pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
                wins = sum(1 for x, y in pairs if y < x)
                targets.append("%s: %sp99 outside the VM's stalls %s us vs %s us%s, meshmq lower in "
                               "%d of %d -> %s" % (
                                   label, med, num(oa), num(ob), per_round(sid, round_outside),
                                   wins, len(pairs),
                                   "met" if ob < oa and 2 * wins > len(pairs) else "MISSED"))
            elif ca is not None and cb is not None:
                # Enough runs without a stall of the VM on both sides: judge on those.
                targets.append("%s: p99 of the runs without a stall %s us vs %s us (median of all "
                               "rounds %s us vs %s us; %s) -> %s" % (
                                   label, num(ca), num(cb), num(pa), num(pb),
                                   per_round(sid, round_p99)[2:-1],
                                   "met" if cb < ca else "MISSED"))
            elif pa is not None and pb is not None:
                targets.append("%s: %sp99 %s us vs %s us%s -> %s" % (
                    label, med, num(pa), num(pb), per_round(sid, round_p99),
                    "met" if pb < pa else "MISSED"))
        else:
            srows, (va, vb) = idle_rows(rs)
            if va is not None and vb is not None:
                targets.append("%s: %s%s vs %s bytes per connection%s -> %s" % (
                    label, med, num(va), num(vb), per_round(sid, round_idle),
                    "met" if vb <= va else "MISSED"))
        for i, r in enumerate(srows):
            rows.append(((label if i == 0 else ""),) + r)
    if rounds > 1:
        notes.insert(0, "each figure is the median of %d rounds (the runs of a rung in the "
                     "rounds that reached it); a rung counts as sustained when it was in most "
                     "rounds; the targets list each round's figure, Mosquitto's first." % rounds)

    control = []
    if o.control:
        try:
            with open(o.control) as f:
                control = [json.loads(line) for line in f if line.strip().startswith("{")]
        except (OSError, ValueError):
            control = []
    if control:
        notes.append(
            "control for the latency scenario, `loopback-echo` (round trips over loopback TCP at "
            "{:,.0f}/s, no broker, pinned as the brokers and the tool are), one a round: p50 {} "
            "us, p99 {} us; a stall of the VM (round trip >= 20 ms) in {} of {}.".format(
                control[0]["rate"], ", ".join(num(c["p50_us"]) for c in control),
                ", ".join(num(c["p99_us"]) for c in control),
                sum(1 for c in control if c["max_us"] >= STALL_US), len(control)))
    if any("--quick" in h for h in header if h.startswith("command:")):
        notes.append("--quick: one low rung per ladder and fewer connections, a smoke test of "
                     "the script; these figures are not the comparison.")
    contended = ["%s (%.0f%%)" % (r["name"], 100 * r["broker_runq"]) for r in runs
                 if (r.get("broker_runq") or 0) > 0.05]
    if contended:
        notes.append("%d of %d runs had the broker waiting for its core more than 5%% of the "
                     "publishing phase (other processes on the machine): %s" % (
                         len(contended), len(runs), ", ".join(contended)))
    if repeated:
        notes.append("%d %s repeated because the broker or the tool waited for its core more "
                     "than 10%% of the time; the table shows the repeat." % (
                         repeated, "run was" if repeated == 1 else "runs were"))
    text = render(header, rows, targets, notes)
    print(text, end="")
    if o.out:
        with open(o.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
