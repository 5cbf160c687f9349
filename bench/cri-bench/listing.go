package main

// cri-bench list: List* latency with many running containers (issue 8's
// "ListContainers latency with 300 containers").
//
//	cri-bench list --socket PATH --label NAME --image REF [--pods 30]
//	    [--containers 10] [--parallel 10] [--calls 200] [--server-pid PID]
//	    [--match STR]... [--log-dir DIR] [--prefix NAME] [--command "sleep 3600"]
//
// 1. PullImage REF (untimed).
// 2. Setup (timed only as a whole): PARALLEL workers over PODS pods; per pod
//    RunPodSandbox, then CONTAINERS × (CreateContainer → StartContainer →
//    ContainerStatus until RUNNING), so PODS × CONTAINERS containers run.
//    Then a check that ListContainers returns all of them.
// 3. Memory with everything running: the RSS of the daemon (--server-pid),
//    of the per-pod monitors (conmon / containerd-shim*, by --match) and of
//    the infra processes under them (pause), one /proc sample (the same
//    sampler as `kubelet`), before and after the listing phase.
// 4. Listing, one connection, sequential, CALLS timed calls of each after 10
//    untimed ones: ListContainers (no filter), ListContainers{pod_sandbox_id}
//    (pods in turn), ListContainers{state RUNNING}, ListPodSandbox (no
//    filter). Each op's block runs in turn; every response's item count is
//    checked. The daemon's CPU over each block is recorded.
// 5. Teardown: StopPodSandbox + RemovePodSandbox of every pod by PARALLEL
//    workers, then ListPodSandbox / ListContainers must be empty.
//
// Prints one JSON line (kind "list"); exit 1 when a CRI call failed or a
// count was wrong.
//
//	cri-bench list-report RESULTS.jsonl
//	    markdown table of the medians over the rounds, hulld / containerd.
//
// Registered from init() like kubelet.go, so main.go is not touched.

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func init() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "list":
			cmdList(os.Args[2:])
			os.Exit(0)
		case "list-report":
			cmdListReport(os.Args[2:])
			os.Exit(0)
		}
	}
}

type listOp struct {
	latStats
	Items       int     `json:"items"`      // items per response (last call)
	RespBytes   int     `json:"resp_bytes"` // bytes of the last response
	DaemonCPUms float64 `json:"daemon_cpu_ms_per_call"`
	WallS       float64 `json:"wall_s"`
	WrongCount  int     `json:"wrong_count"` // responses whose item count was not the expected one
}

type listMem struct {
	DaemonMiB  float64 `json:"daemon_rss_mib"`
	MonitorMiB float64 `json:"monitor_rss_mib"`
	InfraMiB   float64 `json:"infra_rss_mib"`
	TotalMiB   float64 `json:"total_rss_mib"`
	Monitors   int     `json:"monitors"`
	Infra      int     `json:"infra"`
}

type listResult struct {
	Kind          string            `json:"kind"`
	Label         string            `json:"label"`
	Image         string            `json:"image"`
	Pods          int               `json:"pods"`
	PerPod        int               `json:"containers_per_pod"`
	Containers    int               `json:"containers_running"`
	Parallel      int               `json:"parallel"`
	Calls         int               `json:"calls"`
	Errors        int               `json:"errors"`
	FirstErr      string            `json:"first_error,omitempty"`
	SetupWallS    float64           `json:"setup_wall_s"`
	TeardownWallS float64           `json:"teardown_wall_s"`
	DaemonIdleMiB float64           `json:"daemon_rss_before_mib"`
	MemLoaded     listMem           `json:"mem_loaded"`
	MemAfterList  listMem           `json:"mem_after_list"`
	Ops           map[string]listOp `json:"ops"`
	LoadAvg       string            `json:"loadavg_start"`
	LoadAvgEnd    string            `json:"loadavg_end"`
	Leftover      string            `json:"leftover,omitempty"`
}

func loadavg3() string {
	la, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(la))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func memNow(serverPID int, matches []string, workload string) listMem {
	s := newSampler(serverPID, matches, workload)
	s.sample()
	return listMem{DaemonMiB: s.peakMiB("daemon"), MonitorMiB: s.peakMiB("monitor"), InfraMiB: s.peakMiB("infra"),
		TotalMiB: s.peakMiB("total"), Monitors: s.peakCount["monitor"], Infra: s.peakCount["infra"]}
}

func cmdList(args []string) {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	sock := fs.String("socket", "", "CRI socket")
	label := fs.String("label", "", "server label")
	image := fs.String("image", "", "container image (pulled before timing)")
	pods := fs.Int("pods", 30, "pods")
	perPod := fs.Int("containers", 10, "containers per pod")
	parallel := fs.Int("parallel", 10, "concurrent workers (setup and teardown, one pod each)")
	calls := fs.Int("calls", 200, "timed calls per List op")
	serverPID := fs.Int("server-pid", 0, "runtime daemon pid (/proc sampling)")
	var matches stringList
	fs.Var(&matches, "match", "substring of the command line of the runtime's per-pod monitors (repeatable)")
	logDir := fs.String("log-dir", "", "parent of the pods' log directories (created)")
	prefix := fs.String("prefix", "ls", "pod name prefix (unique per run)")
	command := fs.String("command", "sleep 3600", "container command")
	timeout := fs.Duration("timeout", 2*time.Minute, "per-call timeout")
	fs.Parse(args)
	if *sock == "" || *label == "" || *image == "" || *pods < 1 || *perPod < 1 || *parallel < 1 || *calls < 1 {
		fail(2, "list: --socket, --label, --image, --pods/--containers/--parallel/--calls >= 1")
	}
	cmd := strings.Fields(*command)
	workload := ""
	if len(cmd) > 0 {
		workload = filepath.Base(cmd[0])
	}
	conn := dial(*sock)
	defer conn.Close()
	if _, _, err := call(conn, mPullImage, encodeImage(*image), 10*time.Minute); err != nil {
		fail(1, "PullImage %s: %v", *image, err)
	}
	n, total := *pods, *pods**perPod
	r := listResult{Kind: "list", Label: *label, Image: *image, Pods: n, PerPod: *perPod, Parallel: *parallel,
		Calls: *calls, LoadAvg: loadavg3(), Ops: map[string]listOp{}}
	var errMu sync.Mutex
	note := func(err error) {
		if err == nil {
			return
		}
		errMu.Lock()
		r.Errors++
		if r.FirstErr == "" {
			r.FirstErr = err.Error()
		}
		errMu.Unlock()
	}
	if p, ok := readStat(*serverPID); ok {
		r.DaemonIdleMiB = float64(p.rssPages*int64(os.Getpagesize())) / (1 << 20)
	}

	runWorkers := func(work func(i int)) time.Duration { return runWorkers(n, *parallel, work) }

	// ---- setup
	podIDs := make([]string, n)
	var running int
	var runMu sync.Mutex
	setupWall := runWorkers(func(i int) {
		name := fmt.Sprintf("%s-%d", *prefix, i)
		ld := ""
		if *logDir != "" {
			ld = filepath.Join(*logDir, name)
			os.MkdirAll(ld, 0o755)
		}
		cfg := encodePodConfig(name, name+"-uid", "bench", ld)
		resp, _, err := call(conn, mRunPod, msg(nil, 1, cfg), *timeout)
		if err != nil {
			note(fmt.Errorf("RunPodSandbox %s: %v", name, err))
			return
		}
		m, _ := decodeStrings(resp)
		if m[1] == "" {
			note(fmt.Errorf("RunPodSandbox %s: no pod_sandbox_id", name))
			return
		}
		podIDs[i] = m[1]
		for j := 0; j < *perPod; j++ {
			cname := fmt.Sprintf("c%d", j)
			if ld != "" {
				os.MkdirAll(filepath.Join(ld, cname), 0o755)
			}
			resp, _, err := call(conn, mCreateContainer, encodeCreateContainer(m[1], cfg, cname, *image, cmd), *timeout)
			if err != nil {
				note(fmt.Errorf("CreateContainer %s/%s: %v", name, cname, err))
				return
			}
			cm, _ := decodeStrings(resp)
			cid := cm[1]
			if _, _, err = call(conn, mStartContainer, str(nil, 1, cid), *timeout); err != nil {
				note(fmt.Errorf("StartContainer %s/%s: %v", name, cname, err))
				return
			}
			deadline := time.Now().Add(*timeout)
			for {
				resp, _, err := call(conn, mContainerStatus, str(nil, 1, cid), *timeout)
				if err != nil {
					note(fmt.Errorf("ContainerStatus %s/%s: %v", name, cname, err))
					return
				}
				_, sb, _ := fields(resp)
				var state uint64
				if len(sb[1]) > 0 {
					ints, _, _ := fields(sb[1][0])
					state = ints[3]
				}
				if state == stateRunning {
					break
				}
				if state == stateExited || time.Now().After(deadline) {
					note(fmt.Errorf("container %s/%s: state %d, not running", name, cname, state))
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			runMu.Lock()
			running++
			runMu.Unlock()
		}
	})
	r.SetupWallS = setupWall.Seconds()
	r.Containers = running
	if running != total {
		note(fmt.Errorf("setup: %d of %d containers running", running, total))
	}

	// ---- memory with everything running
	r.MemLoaded = memNow(*serverPID, matches, workload)

	// ---- listing
	runningFilter := msg(nil, 1, msg(nil, 2, varint(nil, 1, stateRunning))) // ListContainersRequest{filter{state{RUNNING}}}
	type opDef struct {
		name   string
		method string
		req    func(k int) []byte
		want   int
	}
	ops := []opDef{
		{"list_containers", mListContainers, func(int) []byte { return nil }, total},
		{"list_containers_pod", mListContainers, func(k int) []byte {
			return msg(nil, 1, str(nil, 3, podIDs[k%n])) // ListContainersRequest{filter{pod_sandbox_id}}
		}, *perPod},
		{"list_containers_running", mListContainers, func(int) []byte { return runningFilter }, total},
		{"list_pods", mListPods, func(int) []byte { return nil }, n},
	}
	for _, op := range ops {
		if r.Errors > 0 {
			break
		}
		for k := 0; k < 10; k++ { // warm-up, untimed
			if _, _, err := call(conn, op.method, op.req(k), *timeout); err != nil {
				note(fmt.Errorf("%s (warm-up): %v", op.name, err))
				break
			}
		}
		lat := make([]float64, 0, *calls)
		var o listOp
		c0 := procCPU(*serverPID)
		t0 := time.Now()
		for k := 0; k < *calls; k++ {
			resp, d, err := call(conn, op.method, op.req(k), *timeout)
			if err != nil {
				note(fmt.Errorf("%s: %v", op.name, err))
				break
			}
			lat = append(lat, ms(d))
			o.Items, o.RespBytes = countRepeated(resp), len(resp)
			if o.Items != op.want {
				o.WrongCount++
			}
		}
		o.WallS = time.Since(t0).Seconds()
		o.DaemonCPUms = float64(procCPU(*serverPID)-c0) * 1000 / clkTck / float64(*calls)
		o.latStats = latOf(lat)
		if o.WrongCount > 0 {
			note(fmt.Errorf("%s: %d responses without %d items (last %d)", op.name, o.WrongCount, op.want, o.Items))
		}
		r.Ops[op.name] = o
	}
	r.MemAfterList = memNow(*serverPID, matches, workload)

	// ---- teardown
	r.TeardownWallS = runWorkers(func(i int) {
		if podIDs[i] == "" {
			return
		}
		if _, _, err := call(conn, mStopPod, encodeID(podIDs[i]), *timeout); err != nil {
			note(fmt.Errorf("StopPodSandbox %s: %v", podIDs[i], err))
			return
		}
		if _, _, err := call(conn, mRemovePod, encodeID(podIDs[i]), *timeout); err != nil {
			note(fmt.Errorf("RemovePodSandbox %s: %v", podIDs[i], err))
		}
	}).Seconds()
	pr, _, err1 := call(conn, mListPods, nil, *timeout)
	cr, _, err2 := call(conn, mListContainers, nil, *timeout)
	if err1 != nil || err2 != nil {
		note(fmt.Errorf("final list: %v %v", err1, err2))
	} else if p, c := countRepeated(pr), countRepeated(cr); p != 0 || c != 0 {
		r.Leftover = fmt.Sprintf("%d pods, %d containers listed after teardown", p, c)
		note(fmt.Errorf("%s", r.Leftover))
	}
	r.LoadAvgEnd = loadavg3()
	emit(r)
	if r.Errors > 0 {
		os.Exit(1)
	}
}

// ------------------------------------------------------------------ report

func cmdListReport(args []string) {
	fs := flag.NewFlagSet("list-report", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() != 1 {
		fail(2, "list-report RESULTS.jsonl")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fail(3, "%v", err)
	}
	defer f.Close()
	runs := map[string][]*listResult{}
	var order []*listResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r listResult
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Kind != "list" {
			continue
		}
		runs[r.Label] = append(runs[r.Label], &r)
		order = append(order, &r)
	}
	h, c := runs["hulld"], runs["containerd"]
	medOf := func(rs []*listResult, get func(*listResult) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, get(r))
		}
		return med(xs)
	}
	row := func(name string, get func(*listResult) float64) {
		a, b := medOf(h, get), medOf(c, get)
		fmt.Printf("| %s | %s / %s (%s) |\n", name, g3(a), g3(b), ratio(a, b))
	}
	opRow := func(title, op string) {
		row(title+" p50 ms", func(r *listResult) float64 { return r.Ops[op].P50ms })
		row(title+" p99 ms", func(r *listResult) float64 { return r.Ops[op].P99ms })
	}
	fmt.Printf("**List latency and memory with %s running containers** (medians of %d / %d rounds; each cell hulld / containerd (ratio); ratio < 1 means hulld is faster or smaller):\n\n",
		func() string {
			if len(order) > 0 {
				return fmt.Sprintf("%d (%d pods × %d)", order[0].Pods*order[0].PerPod, order[0].Pods, order[0].PerPod)
			}
			return "?"
		}(), len(h), len(c))
	fmt.Println("| Metric | hulld / containerd |")
	fmt.Println("|---|---:|")
	opRow("ListContainers, no filter,", "list_containers")
	opRow("ListContainers, pod-id filter,", "list_containers_pod")
	opRow("ListContainers, state RUNNING filter,", "list_containers_running")
	opRow("ListPodSandbox, no filter,", "list_pods")
	row("ListContainers no filter: daemon CPU ms/call", func(r *listResult) float64 { return r.Ops["list_containers"].DaemonCPUms })
	row("ListContainers no filter: response KiB", func(r *listResult) float64 { return float64(r.Ops["list_containers"].RespBytes) / 1024 })
	row("daemon RSS MiB before (idle)", func(r *listResult) float64 { return r.DaemonIdleMiB })
	row("daemon RSS MiB with all running", func(r *listResult) float64 { return r.MemLoaded.DaemonMiB })
	row("daemon RSS MiB after the List calls", func(r *listResult) float64 { return r.MemAfterList.DaemonMiB })
	row("per-pod processes RSS MiB (monitors + pause)", func(r *listResult) float64 { return r.MemLoaded.MonitorMiB + r.MemLoaded.InfraMiB })
	row("per-pod processes (count)", func(r *listResult) float64 { return float64(r.MemLoaded.Monitors + r.MemLoaded.Infra) })
	row("total runtime RSS MiB", func(r *listResult) float64 { return r.MemLoaded.TotalMiB })
	row("setup wall s (create + start all, 10 pods at a time)", func(r *listResult) float64 { return r.SetupWallS })
	row("teardown wall s", func(r *listResult) float64 { return r.TeardownWallS })
	fmt.Println()
	fmt.Println("<details><summary>Every run</summary>")
	fmt.Println()
	fmt.Println("| # | server | running | LC p50 / p99 / max ms | LC pod p50 / p99 ms | LC running p50 / p99 ms | LPS p50 / p99 ms | daemon RSS idle / loaded / after MiB | per-pod procs RSS MiB (n) | setup / teardown s | load start → end | errors | leftover |")
	fmt.Println("|---:|---|---:|---|---|---|---|---|---|---|---|---:|---|")
	for i, r := range order {
		lc, lp, lr, ls := r.Ops["list_containers"], r.Ops["list_containers_pod"], r.Ops["list_containers_running"], r.Ops["list_pods"]
		left := r.Leftover
		if left == "" {
			left = "none"
		}
		fmt.Printf("| %d | %s | %d | %s / %s / %s | %s / %s | %s / %s | %s / %s | %s / %s / %s | %s (%d) | %s / %s | %s → %s | %d | %s |\n",
			i+1, r.Label, r.Containers, g3(lc.P50ms), g3(lc.P99ms), g3(lc.MaxMs), g3(lp.P50ms), g3(lp.P99ms),
			g3(lr.P50ms), g3(lr.P99ms), g3(ls.P50ms), g3(ls.P99ms),
			g3(r.DaemonIdleMiB), g3(r.MemLoaded.DaemonMiB), g3(r.MemAfterList.DaemonMiB),
			g3(r.MemLoaded.MonitorMiB+r.MemLoaded.InfraMiB), r.MemLoaded.Monitors+r.MemLoaded.Infra,
			g3(r.SetupWallS), g3(r.TeardownWallS), r.LoadAvg, r.LoadAvgEnd, r.Errors, left)
	}
	fmt.Println()
	fmt.Println("</details>")
}
