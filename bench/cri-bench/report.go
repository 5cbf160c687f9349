package main

// cri-bench report: reads the JSON lines of hack/bench-pods-pulls.sh (pods,
// pull, tar and image lines) and prints markdown tables of the medians over
// the rounds, hulld against containerd; optionally inserts them into
// docs/benchmarks.md below docsMarker (newest first).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

const docsMarker = "<!-- bench-pods-pulls: new results are inserted below this line by hack/bench-pods-pulls.sh --write-docs -->"

type line struct {
	Kind     string  `json:"kind"`
	Label    string  `json:"label"`
	PidMode  string  `json:"pid"`
	Count    int     `json:"count"`
	Parallel int     `json:"parallel"`
	Errors   int     `json:"errors"`
	Run      opStats `json:"run"`
	Stop     opStats `json:"stop"`
	Remove   opStats `json:"remove"`
	Teardown opStats `json:"teardown"`
	Seconds  float64 `json:"seconds"`
	SrvCPU   float64 `json:"server_cpu_s"`
	MachCPU  float64 `json:"machine_cpu_s"`
	// image line
	Compressed int64 `json:"compressed_bytes"`
	Unpacked   int64 `json:"unpacked_bytes"`
	Layers     int   `json:"layers"`
}

func med(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func f1(x float64) string {
	if x == 0 {
		return "—"
	}
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

type podAgg struct{ runP50, runP99, tdP50, tdP99, runCPU, tdCPU, runSrv, tdSrv, runWall, tdWall []float64 }

func cmdReport(args []string) {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	docs := fs.String("docs", "", "insert the report into this markdown file below the bench-pods-pulls marker")
	header := fs.String("header", "", "markdown to put above the tables when writing --docs")
	details := fs.Bool("details", true, "a collapsible table with every run")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fail(2, "usage: cri-bench report [--docs FILE --header FILE] RESULTS.jsonl")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fail(3, "%v", err)
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(t), &l); err != nil {
			fail(3, "%s: %v", fs.Arg(0), err)
		}
		if l.Kind != "" {
			lines = append(lines, l)
		}
	}

	var out strings.Builder
	// ---------------------------------------------------------- pods
	pods := map[string]*podAgg{}
	var settings []string
	seen := map[string]bool{}
	for _, l := range lines {
		if l.Kind != "pods" || l.Errors > 0 {
			continue
		}
		s := fmt.Sprintf("%s|%d|%d", l.PidMode, l.Parallel, l.Count)
		if !seen[s] {
			seen[s] = true
			settings = append(settings, s)
		}
		k := l.Label + "|" + s
		if pods[k] == nil {
			pods[k] = &podAgg{}
		}
		a := pods[k]
		a.runP50 = append(a.runP50, l.Run.P50ms)
		a.runP99 = append(a.runP99, l.Run.P99ms)
		a.tdP50 = append(a.tdP50, l.Teardown.P50ms)
		a.tdP99 = append(a.tdP99, l.Teardown.P99ms)
		a.runCPU = append(a.runCPU, l.Run.MachineCPUms)
		a.tdCPU = append(a.tdCPU, l.Teardown.MachineCPUms)
		a.runSrv = append(a.runSrv, l.Run.ServerCPUms)
		a.tdSrv = append(a.tdSrv, l.Teardown.ServerCPUms)
		a.runWall = append(a.runWall, float64(l.Count)/l.Run.WallS)
		a.tdWall = append(a.tdWall, float64(l.Count)/l.Teardown.WallS)
	}
	setName := func(s string) string {
		f := strings.Split(s, "|")
		pid := "own PID ns (default)"
		if f[0] == "pod" {
			pid = "shared PID ns"
		}
		mode := "sequential"
		if f[1] != "1" {
			mode = f[1] + "-way parallel"
		}
		return fmt.Sprintf("%s pods, %s, %s", f[2], mode, pid)
	}
	if len(settings) > 0 {
		for _, op := range []string{"RunPodSandbox", "StopPodSandbox + RemovePodSandbox"} {
			fmt.Fprintf(&out, "**%s** (latency per pod in ms, medians of the rounds; ratio = hulld / containerd, < 1 means hulld is faster):\n\n", op)
			out.WriteString("| Setting | hulld p50 | hulld p99 | containerd p50 | containerd p99 | p50 ratio | p99 ratio | pods/s hulld | pods/s containerd | machine CPU ms/pod hulld | containerd |\n")
			out.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, s := range settings {
				h, c := pods["hulld|"+s], pods["containerd|"+s]
				if h == nil {
					h = &podAgg{}
				}
				if c == nil {
					c = &podAgg{}
				}
				hp50, hp99, cp50, cp99 := med(h.runP50), med(h.runP99), med(c.runP50), med(c.runP99)
				hw, cw, hc, cc := med(h.runWall), med(c.runWall), med(h.runCPU), med(c.runCPU)
				if op != "RunPodSandbox" {
					hp50, hp99, cp50, cp99 = med(h.tdP50), med(h.tdP99), med(c.tdP50), med(c.tdP99)
					hw, cw, hc, cc = med(h.tdWall), med(c.tdWall), med(h.tdCPU), med(c.tdCPU)
				}
				fmt.Fprintf(&out, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", setName(s),
					f1(hp50), f1(hp99), f1(cp50), f1(cp99), ratio(hp50, cp50), ratio(hp99, cp99), f1(hw), f1(cw), f1(hc), f1(cc))
			}
			out.WriteString("\n")
		}
	}
	// ---------------------------------------------------------- pulls
	var img *line
	pulls := map[string][]float64{}
	pullCPU := map[string][]float64{}
	for i, l := range lines {
		switch l.Kind {
		case "image":
			img = &lines[i]
		case "pull":
			pulls[l.Label] = append(pulls[l.Label], l.Seconds)
			pullCPU[l.Label] = append(pullCPU[l.Label], l.MachCPU)
		case "tar":
			pulls["tar"] = append(pulls["tar"], l.Seconds)
			pullCPU["tar"] = append(pullCPU["tar"], l.MachCPU)
		}
	}
	if len(pulls) > 0 {
		var comp, unp float64
		if img != nil {
			comp, unp = float64(img.Compressed)/(1<<20), float64(img.Unpacked)/(1<<20)
			fmt.Fprintf(&out, "**Image pull** (cold: fresh root, image %.0f MiB compressed / %.0f MiB unpacked in %d layers, local registry on 127.0.0.1; medians of the rounds):\n\n", comp, unp, img.Layers)
		}
		out.WriteString("| | seconds | vs containerd | unpacked MiB/s | machine CPU s |\n|---|---:|---:|---:|---:|\n")
		cs := med(pulls["containerd"])
		for _, k := range []string{"hulld", "containerd", "tar"} {
			if len(pulls[k]) == 0 {
				continue
			}
			name := k + " PullImage"
			if k == "tar" {
				name = "`tar -xzf` of the layer blobs (local files, one after another)"
			}
			s := med(pulls[k])
			tp := "—"
			if unp > 0 && s > 0 {
				tp = fmt.Sprintf("%.0f", unp/s)
			}
			fmt.Fprintf(&out, "| %s | %.2f | %s | %s | %.2f |\n", name, s, ratio(s, cs), tp, med(pullCPU[k]))
		}
		out.WriteString("\n")
	}
	// ---------------------------------------------------------- details
	if *details {
		out.WriteString("<details><summary>Every run</summary>\n\n")
		out.WriteString("| # | server | what | run p50 / p99 ms | stop+remove p50 / p99 ms | stop p50 / remove p50 ms | seconds | errors |\n|---:|---|---|---|---|---|---:|---:|\n")
		for i, l := range lines {
			switch l.Kind {
			case "pods":
				fmt.Fprintf(&out, "| %d | %s | %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f + %.1f | %d |\n", i+1, l.Label,
					setName(fmt.Sprintf("%s|%d|%d", l.PidMode, l.Parallel, l.Count)),
					l.Run.P50ms, l.Run.P99ms, l.Teardown.P50ms, l.Teardown.P99ms, l.Stop.P50ms, l.Remove.P50ms,
					l.Run.WallS, l.Teardown.WallS, l.Errors)
			case "pull", "tar":
				lab := l.Label
				if l.Kind == "tar" {
					lab = "tar -xzf"
				}
				fmt.Fprintf(&out, "| %d | %s | cold pull | | | | %.2f | 0 |\n", i+1, lab, l.Seconds)
			}
		}
		out.WriteString("\n</details>\n")
	}

	report := out.String()
	fmt.Print(report)
	if *docs == "" {
		return
	}
	var hdr []byte
	if *header != "" {
		if hdr, err = os.ReadFile(*header); err != nil {
			fail(3, "%v", err)
		}
	}
	doc, err := os.ReadFile(*docs)
	if err != nil {
		fail(3, "%v", err)
	}
	s := string(doc)
	i := strings.Index(s, docsMarker)
	if i < 0 {
		fail(3, "%s has no marker %q", *docs, docsMarker)
	}
	i += len(docsMarker)
	block := "\n\n" + strings.TrimRight(string(hdr), "\n") + "\n\n" + strings.TrimRight(report, "\n") + "\n"
	rest := strings.TrimLeft(s[i:], "\n")
	if rest != "" {
		rest = "\n" + rest
	}
	if err := os.WriteFile(*docs, []byte(s[:i]+block+rest), 0o644); err != nil {
		fail(3, "%v", err)
	}
	fmt.Fprintf(os.Stderr, "cri-bench: results written into %s\n", *docs)
}
