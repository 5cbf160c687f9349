package main

// grpc-load report: reads the JSON lines of several load runs (one per
// server, concurrency and round) and prints a markdown table of the medians,
// server A against server B; optionally writes it into docs/benchmarks.md.

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

// Marker in docs/benchmarks.md after which new result blocks are inserted
// (newest first; older blocks stay below it as history).
const docsSection = "## CRI gRPC transport"
const docsMarker = "<!-- bench-grpc: new results are inserted below this line by hack/bench-grpc.sh --write-docs -->"

func median(xs []float64) float64 {
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

type agg struct {
	rps, p50, p99, cpu, ccpu, other []float64
	errors                          int64
	runs, disturbed                 int
}

func (a *agg) add(r runResult) {
	a.runs++
	a.errors += r.Errors
	a.rps = append(a.rps, r.CallsPerSec)
	a.p50 = append(a.p50, r.P50us)
	a.p99 = append(a.p99, r.P99us)
	if r.ServerPID > 0 {
		a.cpu = append(a.cpu, r.ServerCPUusPerCal)
	}
	a.ccpu = append(a.ccpu, r.ClientCPUusPerCal)
	a.other = append(a.other, r.OtherCPUCores)
	if r.Disturbed {
		a.disturbed++
	}
}

func fmtInt(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	// thousands separators for readability
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

func fmtUs(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func reportMain(args []string) {
	fs := flag.NewFlagSet("grpc-load report", flag.ExitOnError)
	a := fs.String("a", "hulld", "label of server A (numerator of the ratios)")
	b := fs.String("b", "containerd", "label of server B (denominator)")
	details := fs.Bool("details", false, "also print every run")
	docs := fs.String("docs", "", "insert the report into this markdown file (under the \""+docsSection+"\" section)")
	header := fs.String("header", "", "file with markdown to put above the table (run date, machine, versions) when writing --docs")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: grpc-load report [--a hulld] [--b containerd] [--details] [--docs FILE --header FILE] RESULTS.jsonl")
		os.Exit(2)
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fail(3, "%v", err)
	}
	byKey := map[string]*agg{}
	concSet := map[int]bool{}
	var runs []runResult
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r runResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			fail(3, "%s: %v", fs.Arg(0), err)
		}
		if r.Label == "" || r.Concurrency == 0 {
			continue // a failed run's {"ok":false} line
		}
		runs = append(runs, r)
		key := fmt.Sprintf("%s/%d", r.Label, r.Concurrency)
		if byKey[key] == nil {
			byKey[key] = &agg{}
		}
		byKey[key].add(r)
		concSet[r.Concurrency] = true
	}
	var concs []int
	for c := range concSet {
		concs = append(concs, c)
	}
	sort.Ints(concs)

	var out strings.Builder
	A, B := *a, *b
	fmt.Fprintf(&out, "| concurrency | %s calls/s | %s calls/s | ratio (%s/%s) | %s p50 / p99 (µs) | %s p50 / p99 (µs) | p99 ratio (%s/%s) | server CPU µs/call %s / %s |\n",
		A, B, A, B, A, B, A, B, A, B)
	out.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	totalErrors := int64(0)
	minRuns := -1
	var otherA, otherB []float64
	disturbedA, disturbedB := 0, 0
	for _, c := range concs {
		x, y := byKey[fmt.Sprintf("%s/%d", A, c)], byKey[fmt.Sprintf("%s/%d", B, c)]
		if x == nil || y == nil {
			continue
		}
		totalErrors += x.errors + y.errors
		otherA, otherB = append(otherA, x.other...), append(otherB, y.other...)
		disturbedA, disturbedB = disturbedA+x.disturbed, disturbedB+y.disturbed
		for _, n := range []int{x.runs, y.runs} {
			if minRuns < 0 || n < minRuns {
				minRuns = n
			}
		}
		cpu := "n/a"
		if len(x.cpu) > 0 && len(y.cpu) > 0 {
			cpu = fmt.Sprintf("%s / %s", fmtUs(median(x.cpu)), fmtUs(median(y.cpu)))
		}
		fmt.Fprintf(&out, "| %d | %s | %s | **%s** | %s / %s | %s / %s | **%s** | %s |\n", c,
			fmtInt(median(x.rps)), fmtInt(median(y.rps)), ratio(median(x.rps), median(y.rps)),
			fmtUs(median(x.p50)), fmtUs(median(x.p99)), fmtUs(median(y.p50)), fmtUs(median(y.p99)),
			ratio(median(x.p99), median(y.p99)), cpu)
	}
	fmt.Fprintf(&out, "\nMedians of %d runs per server and concurrency; calls/s ratio > 1 and p99 ratio < 1 favour %s. Failed calls: %d. "+
		"Other load on the machine during the kept runs (median, cores): %s %.2f, %s %.2f; runs kept although disturbed (> --max-other-cpu): %s %d, %s %d.\n",
		minRuns, A, totalErrors, A, median(otherA), B, median(otherB), A, disturbedA, B, disturbedB)

	if *details {
		out.WriteString("\n<details><summary>Every run</summary>\n\n")
		out.WriteString("| server | conc | calls | errors | calls/s | p50 | p90 | p99 | p99.9 | max (µs) | server CPU µs/call | client CPU µs/call | other load (cores) | server RSS (MiB) | threads |\n")
		out.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range runs {
			fmt.Fprintf(&out, "| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.0f | %d |\n",
				r.Label, r.Concurrency, r.Calls, r.Errors, fmtInt(r.CallsPerSec), fmtUs(r.P50us), fmtUs(r.P90us),
				fmtUs(r.P99us), fmtUs(r.P999us), fmtUs(r.MaxUs), fmtUs(r.ServerCPUusPerCal), fmtUs(r.ClientCPUusPerCal),
				r.OtherCPUCores, float64(r.ServerRSSkB)/1024, r.ServerThreads)
		}
		out.WriteString("\n</details>\n")
	}

	fmt.Print(out.String())
	if *docs != "" {
		var hdr []byte
		if *header != "" {
			if hdr, err = os.ReadFile(*header); err != nil {
				fail(3, "%v", err)
			}
		}
		block := strings.TrimRight(string(hdr), "\n") + "\n\n" + out.String()
		if err := insertDocs(*docs, block); err != nil {
			fail(3, "%s: %v", *docs, err)
		}
		fmt.Fprintf(os.Stderr, "grpc-load: wrote the results into %s\n", *docs)
	}
}

// insertDocs puts block right below the marker of the CRI gRPC transport
// section of path (creating the file or the section if needed), so the newest
// run comes first and earlier runs stay below for history.
func insertDocs(path, block string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(data)
	if doc == "" {
		doc = "# Benchmarks\n"
	}
	if !strings.Contains(doc, docsMarker) {
		if !strings.Contains(doc, "\n"+docsSection+"\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n" + docsSection + "\n\n"
		}
		// Marker at the end of the section, i.e. before the next "## " heading.
		i := strings.Index(doc, "\n"+docsSection+"\n") + len(docsSection) + 2
		j := strings.Index(doc[i:], "\n## ")
		if j < 0 {
			doc = strings.TrimRight(doc, "\n") + "\n\n" + docsMarker + "\n"
		} else {
			doc = doc[:i+j] + "\n" + docsMarker + "\n" + doc[i+j:]
		}
	}
	k := strings.Index(doc, docsMarker) + len(docsMarker)
	rest := strings.TrimLeft(doc[k:], "\n")
	doc = doc[:k] + "\n\n" + strings.TrimRight(block, "\n") + "\n"
	if rest != "" {
		doc += "\n" + rest
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
