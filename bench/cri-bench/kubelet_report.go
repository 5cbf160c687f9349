package main

// cri-bench kubelet-report [--docs FILE --header FILE] RESULTS.jsonl
//
// Markdown tables of the `kubelet` lines (hack/bench-vs-containerd.sh):
// medians over the rounds per setting (pods × workers), hulld / containerd
// and their ratio; with --docs, inserted into FILE below kubeletDocsMarker
// (newest first, older results stay below).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

const kubeletDocsMarker = "<!-- bench-vs-containerd: new results are inserted below this line by hack/bench-vs-containerd.sh --write-docs -->"

type klKey struct{ count, parallel int }

func (k klKey) String() string {
	if k.parallel == 1 {
		return fmt.Sprintf("%d pods, sequential", k.count)
	}
	return fmt.Sprintf("%d pods, %d-way", k.count, k.parallel)
}

// A metric: its name and how to read it from a run.
type klMetric struct {
	name string
	get  func(r *kubeletResult) float64
}

func klMetrics(which string) []klMetric {
	op := func(o string, p float64) func(r *kubeletResult) float64 {
		return func(r *kubeletResult) float64 {
			s := r.Ops[o]
			if p == 99 {
				return s.P99ms
			}
			return s.P50ms
		}
	}
	switch which {
	case "latency":
		return []klMetric{
			{"RunPodSandbox p50", op("run_pod", 50)},
			{"CreateContainer p50", op("create_container", 50)},
			{"StartContainer p50", op("start_container", 50)},
			{"pod start p50", op("pod_start", 50)},
			{"pod start p99", op("pod_start", 99)},
			{"StopPodSandbox p50", op("stop_pod", 50)},
			{"RemovePodSandbox p50", op("remove_pod", 50)},
			{"relist p50", relist(func(r *kubeletResult) float64 { return r.Relist.P50ms })},
			{"relist p99", relist(func(r *kubeletResult) float64 { return r.Relist.P99ms })},
			{"pods/s", func(r *kubeletResult) float64 { return r.PodsPerS }},
		}
	default:
		return []klMetric{
			{"daemon CPU s", func(r *kubeletResult) float64 { return r.Procs.DaemonCPUs }},
			{"per-pod procs CPU s", func(r *kubeletResult) float64 { return r.Procs.MonitorCPUs + r.Procs.InfraCPUs }},
			{"total CPU ms/pod", func(r *kubeletResult) float64 { return r.Procs.TotalCPUs * 1000 / float64(r.Count) }},
			{"daemon peak RSS MiB", func(r *kubeletResult) float64 { return r.Procs.DaemonRSSMiB }},
			{"per-pod procs peak RSS MiB", func(r *kubeletResult) float64 { return r.Procs.MonitorRSSMiB + r.Procs.InfraRSSMiB }},
			{"total peak RSS MiB", func(r *kubeletResult) float64 { return r.Procs.TotalRSSMiB }},
			{"machine CPU s", func(r *kubeletResult) float64 { return r.Procs.MachineCPUs }},
		}
	}
}

// relist: no sample (a run shorter than the relist period) is missing, not 0.
func relist(f func(r *kubeletResult) float64) func(r *kubeletResult) float64 {
	return func(r *kubeletResult) float64 {
		if r.Relist.N == 0 {
			return -1
		}
		return f(r)
	}
}

func g3(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func klTable(w *bytes.Buffer, keys []klKey, runs map[klKey]map[string][]*kubeletResult, ms []klMetric) {
	w.WriteString("| Setting |")
	for _, m := range ms {
		w.WriteString(" " + m.name + " |")
	}
	w.WriteString("\n|---|")
	for range ms {
		w.WriteString("---:|")
	}
	w.WriteString("\n")
	for _, k := range keys {
		fmt.Fprintf(w, "| %s |", k)
		for _, m := range ms {
			var h, c []float64
			for _, r := range runs[k]["hulld"] {
				if v := m.get(r); v >= 0 {
					h = append(h, v)
				}
			}
			for _, r := range runs[k]["containerd"] {
				if v := m.get(r); v >= 0 {
					c = append(c, v)
				}
			}
			mh, mc := med(h), med(c)
			sh, sc := g3(mh), g3(mc)
			if len(h) == 0 {
				sh = "—"
			}
			if len(c) == 0 {
				sc = "—"
			}
			if len(h) == 0 || len(c) == 0 {
				mh = 0
			}
			fmt.Fprintf(w, " %s / %s (%s) |", sh, sc, ratio(mh, mc))
		}
		w.WriteString("\n")
	}
}

func cmdKubeletReport(args []string) {
	fs := flag.NewFlagSet("kubelet-report", flag.ExitOnError)
	docs := fs.String("docs", "", "insert the report into this markdown file below the bench-vs-containerd marker")
	header := fs.String("header", "", "markdown to put above the tables when writing --docs")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fail(2, "usage: cri-bench kubelet-report [--docs FILE --header FILE] RESULTS.jsonl")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fail(3, "%v", err)
	}
	defer f.Close()
	var all []*kubeletResult
	var keys []klKey
	runs := map[klKey]map[string][]*kubeletResult{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r kubeletResult
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Kind != "kubelet" {
			continue
		}
		k := klKey{r.Count, r.Parallel}
		if runs[k] == nil {
			runs[k] = map[string][]*kubeletResult{}
			keys = append(keys, k)
		}
		runs[k][r.Label] = append(runs[k][r.Label], &r)
		all = append(all, &r)
	}
	var w bytes.Buffer
	w.WriteString("**Latency and throughput** (ms unless noted; each cell hulld / containerd (ratio), medians of the rounds; ratio < 1 means hulld is faster, for pods/s > 1 means hulld is faster):\n\n")
	klTable(&w, keys, runs, klMetrics("latency"))
	w.WriteString("\n**Runtime resources over the run** (create + teardown; daemon = hulld or containerd with its waited-for children; per-pod procs = conmon (hulld) or containerd-shim-runc-v2 + pause (containerd); each cell hulld / containerd (ratio)):\n\n")
	klTable(&w, keys, runs, klMetrics("resources"))
	w.WriteString("\n<details><summary>Every run</summary>\n\n")
	w.WriteString("| # | server | setting | run / create / start / pod start p50 ms | pod start p99 ms | stop / remove p50 ms | relist p50 / p99 / max ms (samples) | pods/s | daemon / per-pod CPU s | daemon / per-pod / total peak RSS MiB | per-pod procs (max) | load at start | errors |\n")
	w.WriteString("|---:|---|---|---|---:|---|---|---:|---|---|---:|---|---:|\n")
	for i, r := range all {
		o := r.Ops
		rel := fmt.Sprintf("%s / %s / %s", g3(r.Relist.P50ms), g3(r.Relist.P99ms), g3(r.Relist.MaxMs))
		if r.Relist.N == 0 {
			rel = "— (no sample)"
		}
		errs := fmt.Sprint(r.Errors)
		if r.FirstErr != "" {
			errs += " (" + strings.ReplaceAll(r.FirstErr, "|", "/") + ")"
		}
		if len(errs) > 120 {
			errs = errs[:120] + "…"
		}
		fmt.Fprintf(&w, "| %d | %s | %s | %s / %s / %s / %s | %s | %s / %s | %s (%d) | %s | %s / %s | %s / %s / %s | %d | %s | %s |\n",
			i+1, r.Label, klKey{r.Count, r.Parallel},
			g3(o["run_pod"].P50ms), g3(o["create_container"].P50ms), g3(o["start_container"].P50ms), g3(o["pod_start"].P50ms),
			g3(o["pod_start"].P99ms), g3(o["stop_pod"].P50ms), g3(o["remove_pod"].P50ms),
			rel, r.Relist.N, g3(r.PodsPerS),
			g3(r.Procs.DaemonCPUs), g3(r.Procs.MonitorCPUs+r.Procs.InfraCPUs),
			g3(r.Procs.DaemonRSSMiB), g3(r.Procs.MonitorRSSMiB+r.Procs.InfraRSSMiB), g3(r.Procs.TotalRSSMiB),
			r.Procs.MonitorsMax+r.Procs.InfraMax, r.LoadAvg, errs)
	}
	w.WriteString("\n</details>\n")
	os.Stdout.Write(w.Bytes())
	if *docs == "" {
		return
	}
	doc, err := os.ReadFile(*docs)
	if err != nil {
		fail(3, "%v", err)
	}
	i := bytes.Index(doc, []byte(kubeletDocsMarker))
	if i < 0 {
		fail(3, "%s: marker %q not found", *docs, kubeletDocsMarker)
	}
	var hdr []byte
	if *header != "" {
		if hdr, err = os.ReadFile(*header); err != nil {
			fail(3, "%v", err)
		}
	}
	at := i + len(kubeletDocsMarker)
	var out bytes.Buffer
	out.Write(doc[:at])
	out.WriteString("\n\n")
	out.Write(bytes.TrimRight(hdr, "\n"))
	out.WriteString("\n\n")
	out.Write(w.Bytes())
	rest := bytes.TrimLeft(doc[at:], "\n")
	if len(rest) > 0 {
		out.WriteString("\n")
		out.Write(rest)
	}
	if err := os.WriteFile(*docs, out.Bytes(), 0o644); err != nil {
		fail(3, "%v", err)
	}
}
