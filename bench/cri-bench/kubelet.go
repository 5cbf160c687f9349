package main

// cri-bench kubelet: a kubelet-shaped load against any CRI v1 socket (issue 8).
//
//	cri-bench kubelet --socket PATH --label NAME --image REF [--count 10]
//	    [--parallel 1] [--server-pid PID] [--match STR]... [--log-dir DIR]
//	    [--prefix NAME] [--command "sleep 3600"] [--relist 1s] [--sample 200ms]
//
// 1. PullImage REF (untimed: the image is pulled once before timing).
// 2. Create phase, PARALLEL workers over COUNT pods, each pod as the kubelet's
//    SyncPod does it: RunPodSandbox → CreateContainer (one container running
//    COMMAND, own PID namespace, the pod's network and IPC) → StartContainer →
//    ContainerStatus until RUNNING. "pod start" is RunPodSandbox sent →
//    container seen RUNNING.
// 3. Teardown phase, PARALLEL workers: StopPodSandbox, RemovePodSandbox.
// 4. During both phases a PLEG-like relister calls ListPodSandbox +
//    ListContainers (no filter) every RELIST and records the latency, and a
//    sampler reads /proc every SAMPLE: the daemon (--server-pid, its CPU
//    including waited-for children such as runc and CNI plugins), the
//    per-pod monitors (conmon or containerd-shim*, found by --match in their
//    command line since they re-parent away from the daemon) and the infra
//    processes under a monitor (pause/catatonit: any child of a monitor whose
//    command is not the workload's). CPU seconds are the growth of
//    utime+stime+cutime+cstime per process over the run; peak RSS is the
//    largest sum of RSS over one sample. A monitor's short-lived forks (the
//    runc it runs) keep its pid and start time, so they count as the monitor.
//
// Prints one JSON line (kind "kubelet"); exit 1 when a CRI call failed.
// This file registers itself from init() so that main.go's dispatch is not
// touched (other commands are added there concurrently).

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	mCreateContainer = "/runtime.v1.RuntimeService/CreateContainer"
	mStartContainer  = "/runtime.v1.RuntimeService/StartContainer"
	mContainerStatus = "/runtime.v1.RuntimeService/ContainerStatus"
	mListPods        = "/runtime.v1.RuntimeService/ListPodSandbox"
	mListContainers  = "/runtime.v1.RuntimeService/ListContainers"
	stateRunning     = 1 // ContainerState CONTAINER_RUNNING
	stateExited      = 2
)

func init() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "kubelet":
			cmdKubelet(os.Args[2:])
			os.Exit(0)
		case "kubelet-report":
			cmdKubeletReport(os.Args[2:])
			os.Exit(0)
		}
	}
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// ------------------------------------------------------------------ encoding

// PodSandboxConfig{metadata=1{name,uid,namespace}, hostname=2, log_directory=3,
// labels=6, linux=8{security_context=2{namespace_options=1{network=1 POD,
// pid=2 CONTAINER, ipc=3 POD}}}}
func encodePodConfig(name, uid, ns, logDir string) []byte {
	var md []byte
	md = str(md, 1, name)
	md = str(md, 2, uid)
	md = str(md, 3, ns)
	var nso []byte
	nso = varint(nso, 2, nsModeContaner)
	var sc []byte
	sc = msg(sc, 1, nso)
	var linux []byte
	linux = msg(linux, 2, sc)
	var cfg []byte
	cfg = msg(cfg, 1, md)
	cfg = str(cfg, 2, name)
	cfg = str(cfg, 3, logDir)
	cfg = msg(cfg, 6, mapEntry("io.kubernetes.pod.name", name))
	cfg = msg(cfg, 8, linux)
	return cfg
}

func mapEntry(k, v string) []byte { return str(str(nil, 1, k), 2, v) }

// CreateContainerRequest{pod_sandbox_id=1, config=2 ContainerConfig{
// metadata=1{name=1}, image=2{image=1}, command=3, args=4, labels=9,
// log_path=11, linux=15{security_context=2{namespace_options=3{pid=2
// CONTAINER}}}}, sandbox_config=3}
func encodeCreateContainer(podID string, podCfg []byte, name, image string, command []string) []byte {
	var c []byte
	c = msg(c, 1, str(nil, 1, name))
	c = msg(c, 2, str(nil, 1, image))
	if len(command) > 0 {
		c = str(c, 3, command[0])
		for _, a := range command[1:] {
			c = protowire.AppendTag(c, 4, protowire.BytesType)
			c = protowire.AppendString(c, a)
		}
	}
	c = msg(c, 9, mapEntry("io.kubernetes.container.name", name))
	c = str(c, 11, name+"/0.log")
	var nso []byte
	nso = varint(nso, 2, nsModeContaner)
	c = msg(c, 15, msg(nil, 2, msg(nil, 3, nso)))
	var r []byte
	r = str(r, 1, podID)
	r = msg(r, 2, c)
	r = msg(r, 3, podCfg)
	return r
}

// fields: the scalar fields (varint) and strings (bytes) of one message level.
func fields(b []byte) (map[int]uint64, map[int][][]byte, error) {
	ints, bytes := map[int]uint64{}, map[int][][]byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, nil, protowire.ParseError(m)
			}
			ints[int(num)] = v
			b = b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, nil, protowire.ParseError(m)
			}
			bytes[int(num)] = append(bytes[int(num)], v)
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return nil, nil, protowire.ParseError(m)
			}
			b = b[m:]
		}
	}
	return ints, bytes, nil
}

// ------------------------------------------------------------------ /proc sampler

type procInfo struct {
	ppid      int
	comm      string
	start     uint64
	cpu       int64 // utime+stime+cutime+cstime, ticks
	rssPages  int64
	statError bool
}

func readStat(pid int) (procInfo, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	s := string(data)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return procInfo{}, false
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 22 {
		return procInfo{}, false
	}
	p := procInfo{comm: s[i+1 : j]}
	p.ppid, _ = strconv.Atoi(f[1])
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		p.cpu += v
	}
	p.start, _ = strconv.ParseUint(f[19], 10, 64)
	p.rssPages, _ = strconv.ParseInt(f[21], 10, 64)
	return p, true
}

type tracked struct {
	cat        string // daemon, monitor, infra, "" (not ours)
	base, last int64
}

type procKey struct {
	pid   int
	start uint64
}

type sampler struct {
	serverPID  int
	matches    []string
	workload   string
	known      map[procKey]*tracked
	first      bool
	peak       map[string]int64 // peak RSS (pages) of the sum per category, and "total"
	peakCount  map[string]int
	monitorCmd map[string]int
	samples    int
}

func newSampler(serverPID int, matches []string, workload string) *sampler {
	return &sampler{serverPID: serverPID, matches: matches, workload: workload, known: map[procKey]*tracked{},
		first: true, peak: map[string]int64{}, peakCount: map[string]int{}, monitorCmd: map[string]int{}}
}

func isMonitor(comm string) bool {
	return comm == "conmon" || strings.HasPrefix(comm, "containerd-shim")
}

func (s *sampler) cmdlineMatches(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	cl := string(data)
	for _, m := range s.matches {
		if m != "" && strings.Contains(cl, m) {
			return true
		}
	}
	return false
}

func (s *sampler) sample() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	infos := map[int]procInfo{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			infos[pid] = p
		}
	}
	monitors := map[int]bool{}
	sum, count := map[string]int64{}, map[string]int{}
	classify := func(pid int, p procInfo) *tracked {
		k := procKey{pid, p.start}
		t := s.known[k]
		if t == nil {
			t = &tracked{}
			switch {
			case pid == s.serverPID:
				t.cat = "daemon"
			case isMonitor(p.comm) && s.cmdlineMatches(pid):
				t.cat = "monitor"
			}
			if t.cat != "" && s.first {
				t.base = p.cpu // there before the run: count only the growth
			}
			s.known[k] = t
		}
		return t
	}
	// Monitors first, then their children (infra), in one pass each.
	for pid, p := range infos {
		if t := classify(pid, p); t.cat == "monitor" {
			monitors[pid] = true
			s.monitorCmd[p.comm]++
		}
	}
	for pid, p := range infos {
		k := procKey{pid, p.start}
		t := s.known[k]
		if t == nil {
			t = classify(pid, p)
		}
		cat := t.cat
		if cat == "" || cat == "infra" {
			// Re-evaluated every sample: a container's process is "runc:[2:INIT]"
			// under the monitor until it execs the workload.
			cat = ""
			if monitors[p.ppid] && p.comm != s.workload && !strings.HasPrefix(p.comm, "runc") {
				cat = "infra"
				if t.cat == "" && s.first {
					t.base = p.cpu
				}
				t.cat = "infra"
			}
		}
		if cat == "" {
			continue
		}
		if p.cpu > t.last {
			t.last = p.cpu
		}
		sum[cat] += p.rssPages
		sum["total"] += p.rssPages
		count[cat]++
	}
	for c, v := range sum {
		if v > s.peak[c] {
			s.peak[c] = v
		}
	}
	for c, n := range count {
		if n > s.peakCount[c] {
			s.peakCount[c] = n
		}
	}
	s.first = false
	s.samples++
}

func (s *sampler) cpuSeconds(cat string) float64 {
	var t int64
	for _, tr := range s.known {
		if tr.cat == cat && tr.last > tr.base {
			t += tr.last - tr.base
		}
	}
	return float64(t) / clkTck
}

func (s *sampler) peakMiB(cat string) float64 {
	return float64(s.peak[cat]*int64(os.Getpagesize())) / (1 << 20)
}

// ------------------------------------------------------------------ results

type latStats struct {
	N      int     `json:"n"`
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func latOf(xs []float64) latStats {
	var ok []float64
	for _, x := range xs {
		if x >= 0 {
			ok = append(ok, x)
		}
	}
	return latStats{N: len(ok), P50ms: pct(ok, 50), P90ms: pct(ok, 90), P99ms: pct(ok, 99), MeanMs: mean(ok), MaxMs: pct(ok, 100)}
}

type relistStats struct {
	latStats
	PodsMax       int      `json:"pods_max"`
	ContainersMax int      `json:"containers_max"`
	Create        latStats `json:"during_create"`
}

type procStats struct {
	DaemonCPUs     float64        `json:"daemon_cpu_s"`
	MonitorCPUs    float64        `json:"monitor_cpu_s"`
	InfraCPUs      float64        `json:"infra_cpu_s"`
	TotalCPUs      float64        `json:"total_cpu_s"`
	DaemonRSSMiB   float64        `json:"daemon_rss_peak_mib"`
	MonitorRSSMiB  float64        `json:"monitor_rss_peak_mib"`
	InfraRSSMiB    float64        `json:"infra_rss_peak_mib"`
	TotalRSSMiB    float64        `json:"total_rss_peak_mib"`
	MonitorsMax    int            `json:"monitors_max"`
	InfraMax       int            `json:"infra_max"`
	MonitorComm    map[string]int `json:"monitor_comm_samples"`
	Samples        int            `json:"samples"`
	MachineCPUs    float64        `json:"machine_cpu_s"`
	SampleInterval string         `json:"sample_interval"`
}

type kubeletResult struct {
	Kind        string              `json:"kind"`
	Label       string              `json:"label"`
	Image       string              `json:"image"`
	Count       int                 `json:"count"`
	Parallel    int                 `json:"parallel"`
	Errors      int                 `json:"errors"`
	FirstErr    string              `json:"first_error,omitempty"`
	Ops         map[string]latStats `json:"ops"`
	CreateWallS float64             `json:"create_wall_s"`
	TeardownS   float64             `json:"teardown_wall_s"`
	PodsPerS    float64             `json:"pods_per_s"`
	TeardownPS  float64             `json:"teardown_pods_per_s"`
	Relist      relistStats         `json:"relist"`
	Procs       procStats           `json:"procs"`
	LoadAvg     string              `json:"loadavg_start"`
	Leftover    string              `json:"leftover,omitempty"`
}

func countRepeated(resp []byte) int {
	_, b, err := fields(resp)
	if err != nil {
		return -1
	}
	return len(b[1])
}

// ------------------------------------------------------------------ command

func cmdKubelet(args []string) {
	fs := flag.NewFlagSet("kubelet", flag.ExitOnError)
	sock := fs.String("socket", "", "CRI socket")
	label := fs.String("label", "", "server label")
	image := fs.String("image", "", "container image (pulled before timing)")
	count := fs.Int("count", 10, "pods (one container each)")
	parallel := fs.Int("parallel", 1, "concurrent workers")
	serverPID := fs.Int("server-pid", 0, "runtime daemon pid (/proc sampling)")
	var matches stringList
	fs.Var(&matches, "match", "substring of the command line of the runtime's per-pod monitors (repeatable)")
	logDir := fs.String("log-dir", "", "parent of the pods' log directories (created)")
	prefix := fs.String("prefix", "kl", "pod name prefix (unique per run)")
	command := fs.String("command", "sleep 3600", "container command")
	relist := fs.Duration("relist", time.Second, "PLEG relist period")
	sampleEvery := fs.Duration("sample", 200*time.Millisecond, "/proc sampling period")
	timeout := fs.Duration("timeout", 2*time.Minute, "per-call timeout")
	fs.Parse(args)
	if *sock == "" || *label == "" || *image == "" || *count < 1 || *parallel < 1 {
		fail(2, "kubelet: --socket, --label, --image, --count >= 1, --parallel >= 1")
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
	la, _ := os.ReadFile("/proc/loadavg")

	n := *count
	r := kubeletResult{Kind: "kubelet", Label: *label, Image: *image, Count: n, Parallel: *parallel,
		LoadAvg: strings.Join(strings.Fields(string(la))[:3], " ")}
	lat := map[string][]float64{}
	for _, op := range []string{"run_pod", "create_container", "start_container", "create_start", "pod_start", "stop_pod", "remove_pod"} {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = -1
		}
		lat[op] = xs
	}
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

	// Background: /proc sampler and PLEG relister.
	smp := newSampler(*serverPID, matches, workload)
	smp.sample()
	b0 := sysBusy()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		t := time.NewTicker(*sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				smp.sample()
			}
		}
	}()
	var relMu sync.Mutex
	var relAll, relCreate []float64
	creating := true
	go func() {
		defer bg.Done()
		t := time.NewTicker(*relist)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			t0 := time.Now()
			pr, _, err1 := call(conn, mListPods, nil, *timeout)
			cr, _, err2 := call(conn, mListContainers, nil, *timeout)
			d := ms(time.Since(t0))
			if err1 != nil || err2 != nil {
				note(fmt.Errorf("relist: %v %v", err1, err2))
				continue
			}
			relMu.Lock()
			relAll = append(relAll, d)
			if creating {
				relCreate = append(relCreate, d)
			}
			if c := countRepeated(pr); c > r.Relist.PodsMax {
				r.Relist.PodsMax = c
			}
			if c := countRepeated(cr); c > r.Relist.ContainersMax {
				r.Relist.ContainersMax = c
			}
			relMu.Unlock()
		}
	}()

	runWorkers := func(work func(i int)) time.Duration { return runWorkers(n, *parallel, work) }

	podIDs := make([]string, n)
	wall := runWorkers(func(i int) {
		name := fmt.Sprintf("%s-%d", *prefix, i)
		ld := ""
		if *logDir != "" {
			ld = filepath.Join(*logDir, name)
			os.MkdirAll(ld, 0o755)
		}
		cfg := encodePodConfig(name, name+"-uid", "bench", ld)
		t0 := time.Now()
		resp, d, err := call(conn, mRunPod, msg(nil, 1, cfg), *timeout)
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
		lat["run_pod"][i] = ms(d)
		resp, d, err = call(conn, mCreateContainer, encodeCreateContainer(m[1], cfg, "c", *image, cmd), *timeout)
		if err != nil {
			note(fmt.Errorf("CreateContainer %s: %v", name, err))
			return
		}
		cm, _ := decodeStrings(resp)
		cid := cm[1]
		lat["create_container"][i] = ms(d)
		if _, d, err = call(conn, mStartContainer, str(nil, 1, cid), *timeout); err != nil {
			note(fmt.Errorf("StartContainer %s: %v", name, err))
			return
		}
		lat["start_container"][i] = ms(d)
		lat["create_start"][i] = lat["create_container"][i] + ms(d) // hack/bench-nri.sh's measure
		deadline := time.Now().Add(*timeout)
		for {
			resp, _, err := call(conn, mContainerStatus, str(nil, 1, cid), *timeout)
			if err != nil {
				note(fmt.Errorf("ContainerStatus %s: %v", name, err))
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
				note(fmt.Errorf("container of %s: state %d, not running", name, state))
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat["pod_start"][i] = ms(time.Since(t0))
	})
	r.CreateWallS = wall.Seconds()
	relMu.Lock()
	creating = false
	relMu.Unlock()

	wall = runWorkers(func(i int) {
		if podIDs[i] == "" {
			return
		}
		_, d, err := call(conn, mStopPod, encodeID(podIDs[i]), *timeout)
		if err != nil {
			note(fmt.Errorf("StopPodSandbox %s: %v", podIDs[i], err))
			return
		}
		lat["stop_pod"][i] = ms(d)
		_, d, err = call(conn, mRemovePod, encodeID(podIDs[i]), *timeout)
		if err != nil {
			note(fmt.Errorf("RemovePodSandbox %s: %v", podIDs[i], err))
			return
		}
		lat["remove_pod"][i] = ms(d)
	})
	r.TeardownS = wall.Seconds()
	close(stop)
	bg.Wait()
	smp.sample()
	b1 := sysBusy()

	r.Ops = map[string]latStats{}
	for op, xs := range lat {
		r.Ops[op] = latOf(xs)
	}
	r.PodsPerS = float64(r.Ops["pod_start"].N) / r.CreateWallS
	r.TeardownPS = float64(r.Ops["remove_pod"].N) / r.TeardownS
	r.Relist.latStats = latOf(relAll)
	r.Relist.Create = latOf(relCreate)
	r.Procs = procStats{
		DaemonCPUs: smp.cpuSeconds("daemon"), MonitorCPUs: smp.cpuSeconds("monitor"), InfraCPUs: smp.cpuSeconds("infra"),
		DaemonRSSMiB: smp.peakMiB("daemon"), MonitorRSSMiB: smp.peakMiB("monitor"), InfraRSSMiB: smp.peakMiB("infra"),
		TotalRSSMiB: smp.peakMiB("total"), MonitorsMax: smp.peakCount["monitor"], InfraMax: smp.peakCount["infra"],
		MonitorComm: smp.monitorCmd, Samples: smp.samples, MachineCPUs: float64(b1-b0) / clkTck,
		SampleInterval: sampleEvery.String(),
	}
	r.Procs.TotalCPUs = r.Procs.DaemonCPUs + r.Procs.MonitorCPUs + r.Procs.InfraCPUs

	// Nothing of ours may be left in the runtime's lists.
	if pr, _, err := call(conn, mListPods, nil, *timeout); err == nil {
		if cr, _, err := call(conn, mListContainers, nil, *timeout); err == nil {
			if p, c := countRepeated(pr), countRepeated(cr); p > 0 || c > 0 {
				r.Leftover = fmt.Sprintf("%d pods, %d containers listed after teardown", p, c)
			}
		}
	}
	emit(r)
	if r.Errors > 0 {
		os.Exit(1)
	}
}

// runWorkers calls work(0..n-1) from `parallel` goroutines and returns the wall time.
func runWorkers(n, parallel int, work func(i int)) time.Duration {
	t0 := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				work(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return time.Since(t0)
}
