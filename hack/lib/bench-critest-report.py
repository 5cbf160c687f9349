#!/usr/bin/env python3
"""Tables for hack/bench-critest.sh.

usage: bench-critest-report.py TEMPDIR ROUNDS            markdown tables on stdout
       bench-critest-report.py --insert DOCS HEADER BODY  puts HEADER + BODY below the bench-critest marker of DOCS

TEMPDIR holds, per server S in (hulld, containerd): conformance-S-R.json / .seconds for rounds R = 1..ROUNDS
(Ginkgo JSON report, wall time), and benchmark-S.json with benchmark-S/*_benchmark_data.json (critest -benchmark).
"""
import json
import os
import statistics
import sys

SERVERS = ("hulld", "containerd")
MARKER = "<!-- bench-critest: new results are inserted below this line by hack/bench-critest.sh --write-docs -->"
BENCHMARK_FILES = (  # file, what the spec measures
    ("pod_benchmark_data.json", "pod lifecycle"),
    ("container_benchmark_data.json", "container lifecycle (own pod, busybox `top`)"),
    ("image_lifecycle_benchmark_data.json", "image lifecycle (test-image-latest, 1 layer)"),
    ("image_listing_benchmark_data.json", "image listing ({images} images)"),
)
FAILED = {"failed", "panicked", "timedout", "interrupted", "aborted"}


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "–"


def counts(report_path):
    """passed, failed, skipped of the conformance specs (benchmarks left out), as critest reports them."""
    passed = failed = skipped = 0
    with open(report_path, encoding="utf-8") as f:
        for suite in json.load(f):
            for spec in suite.get("SpecReports") or []:
                text = " ".join((spec.get("ContainerHierarchyTexts") or []) + [spec.get("LeafNodeText") or ""])
                if spec.get("LeafNodeType") != "It" or "benchmark" in text:
                    continue
                state = spec.get("State")
                passed += state == "passed"
                failed += state in FAILED
                skipped += state == "skipped"
    return passed, failed, skipped


def conformance(tmp, rounds):
    out = ["**Conformance suite wall time** (critest start to end, one spec at a time; each round runs hulld, "
           "then containerd):", "",
           "| | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " | median | passed / failed / skipped |",
           "|---|" + "---:|" * rounds + "---:|---|"]
    medians = {}
    for s in SERVERS:
        seconds, result = [], "–"
        for r in range(1, rounds + 1):
            path = os.path.join(tmp, f"conformance-{s}-{r}")
            if os.path.exists(path + ".seconds"):
                seconds.append(float(open(path + ".seconds").read()))
            if os.path.exists(path + ".json"):
                result = "{} / {} / {}".format(*counts(path + ".json"))
        medians[s] = statistics.median(seconds) if seconds else None
        cells = " | ".join(f"{x:.1f} s" for x in seconds)
        out.append(f"| {s} | {cells} | **{medians[s]:.1f} s** | {result} |" if seconds else f"| {s} | – |")
    out += ["", f"hulld / containerd wall time: **{ratio(medians['hulld'], medians['containerd'])}** "
                "(< 1: hulld finishes the suite sooner).", ""]
    return out


def from_scratch(report_path):
    """The one duration of "benchmark about start a container from scratch" (a gmeasure report entry), in ms."""
    if not os.path.exists(report_path):
        return None
    with open(report_path, encoding="utf-8") as f:
        for suite in json.load(f):
            for spec in suite.get("SpecReports") or []:
                for entry in spec.get("ReportEntries") or []:
                    if entry.get("Name") == "start-container-benchmark":
                        value = json.loads(entry["Value"]["AsJSON"])
                        durations = value["Measurements"][0]["Durations"]
                        return statistics.median(durations) / 1e6
    return None


def image_count(tmp, server):
    path = os.path.join(tmp, f"benchmark-{server}.images")
    return open(path).read().strip() if os.path.exists(path) else "?"


def benchmarks(tmp):
    out = ["**critest -benchmark specs** (samples one at a time; milliseconds per operation, median and p90 "
           "of the samples):", "",
           "| spec | operation | hulld p50 | containerd p50 | hulld p90 | containerd p90 | p50 ratio |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for name, what in BENCHMARK_FILES:
        data = {}
        for s in SERVERS:
            path = os.path.join(tmp, f"benchmark-{s}", name)
            if os.path.exists(path):
                data[s] = json.load(open(path, encoding="utf-8"))
        if not data:
            continue
        ops = next(iter(data.values()))["operationsNames"]
        what = what.format(images="/".join(image_count(tmp, s) for s in SERVERS))
        samples = {s: len(d.get("datapoints") or []) for s, d in data.items()}
        for i, op in enumerate(ops):
            stats = {}
            for s, d in data.items():
                ms = sorted(p["operationsDurationsNs"][i] / 1e6 for p in d.get("datapoints") or [])
                if ms:
                    stats[s] = (statistics.median(ms), ms[min(len(ms) - 1, int(0.9 * len(ms)))])
            h, c = stats.get("hulld", (None, None)), stats.get("containerd", (None, None))
            fmt = lambda x: f"{x:.1f}" if x is not None else "–"
            label = f"{what}, n = {'/'.join(str(samples.get(s, 0)) for s in SERVERS)}" if i == 0 else ""
            out.append(f"| {label} | {op} | {fmt(h[0])} | {fmt(c[0])} | {fmt(h[1])} | {fmt(c[1])} | **{ratio(h[0], c[0])}** |")
    h, c = (from_scratch(os.path.join(tmp, f"benchmark-{s}.json")) for s in SERVERS)
    fmt = lambda x: f"{x:.1f}" if x is not None else "–"
    out.append(f"| pod + container from scratch, n = 1 | RunPodSandbox → CreateContainer → StartContainer → "
               f"StopPodSandbox → RemovePodSandbox | {fmt(h)} | {fmt(c)} | | | **{ratio(h, c)}** |")
    out += ["", "Ratios are hulld / containerd: < 1 means hulld is faster."]
    return out


def insert(docs, header, body):
    text = open(docs, encoding="utf-8").read()
    if MARKER not in text:
        sys.exit(f"bench-critest-report: {docs} has no line {MARKER}")
    block = open(header, encoding="utf-8").read().rstrip("\n") + "\n\n" + open(body, encoding="utf-8").read().rstrip("\n")
    text = text.replace(MARKER, MARKER + "\n\n" + block, 1)
    with open(docs, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if sys.argv[1] == "--insert":
        insert(*sys.argv[2:5])
        return
    tmp, rounds = sys.argv[1], int(sys.argv[2])
    lines = (conformance(tmp, rounds) if rounds > 0 else []) + benchmarks(tmp)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
