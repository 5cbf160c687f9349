// Command cri-bench drives the pod sandbox and image pull benchmarks of
// hack/bench-pods-pulls.sh against a CRI v1 server on a unix socket (hulld or
// containerd's CRI plugin), with the same independent client for both.
//
// Like bench/grpc-load it uses no generated CRI code: requests are
// hand-encoded with protowire (field numbers from api/cri/api.proto) and
// passed through a raw []byte codec, so it builds in GOPATH mode against
// Debian's golang-google-grpc-dev (grpc-go 1.33) and
// golang-google-protobuf-dev.
//
// Usage:
//
//	cri-bench probe --socket PATH
//	    one Version call; prints {"runtime_name":...,"runtime_version":...}
//	cri-bench pods --socket PATH --label NAME [--count 50] [--parallel 1]
//	    [--pid container|pod] [--log-dir DIR] [--server-pid PID]
//	    RunPodSandbox of COUNT pods by PARALLEL workers, then StopPodSandbox +
//	    RemovePodSandbox of all of them by PARALLEL workers; per-call latency
//	    percentiles, wall time, CPU of the server and of the whole machine.
//	cri-bench pull --socket PATH --label NAME --image REF [--server-pid PID]
//	    one PullImage (timed); prints the seconds and the image ref.
//	cri-bench remove-image --socket PATH --image REF
//	cri-bench report [--docs FILE --header FILE] RESULTS.jsonl
//	    markdown tables of the medians (see report.go).
//
// Every measuring command prints one JSON line on stdout. Exit codes: 0 ok,
// 1 a CRI call failed, 2 usage, 3 harness.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	mVersion       = "/runtime.v1.RuntimeService/Version"
	mRunPod        = "/runtime.v1.RuntimeService/RunPodSandbox"
	mStopPod       = "/runtime.v1.RuntimeService/StopPodSandbox"
	mRemovePod     = "/runtime.v1.RuntimeService/RemovePodSandbox"
	mPullImage     = "/runtime.v1.ImageService/PullImage"
	mRemoveImage   = "/runtime.v1.ImageService/RemoveImage"
	clkTck         = 100 // USER_HZ
	nsModePod      = 0   // NamespaceMode POD
	nsModeContaner = 1   // NamespaceMode CONTAINER (the kubelet's default for pid)
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// ------------------------------------------------------------------ encoding

func str(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func msg(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func varint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// RunPodSandboxRequest{config=1{metadata=1{name=1,uid=2,namespace=3,attempt=4},
// hostname=2, log_directory=3, linux=8{security_context=2{namespace_options=1{
// network=1, pid=2, ipc=3}}}}}
func encodeRunPod(name, uid, ns, logDir string, pidMode uint64) []byte {
	var md []byte
	md = str(md, 1, name)
	md = str(md, 2, uid)
	md = str(md, 3, ns)
	var nso []byte
	nso = varint(nso, 1, nsModePod)
	nso = varint(nso, 2, pidMode)
	nso = varint(nso, 3, nsModePod)
	var sc []byte
	sc = msg(sc, 1, nso)
	var linux []byte
	linux = msg(linux, 2, sc)
	var cfg []byte
	cfg = msg(cfg, 1, md)
	cfg = str(cfg, 2, name)
	cfg = str(cfg, 3, logDir)
	cfg = msg(cfg, 8, linux)
	return msg(nil, 1, cfg)
}

func encodeID(id string) []byte { return str(nil, 1, id) } // Stop/RemovePodSandboxRequest{pod_sandbox_id=1}

func encodeImage(ref string) []byte { return msg(nil, 1, str(nil, 1, ref)) } // Pull/RemoveImageRequest{image=1{image=1}}

func decodeStrings(b []byte) (map[int]string, error) {
	out := map[int]string{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			s, m := protowire.ConsumeString(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			out[int(num)] = s
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return out, nil
}

// ------------------------------------------------------------------ /proc

// procCPU: utime+stime+cutime+cstime of a process in clock ticks (waited-for
// children included: runc, CNI plugins, conmon before it daemonises).
func procCPU(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0
	}
	var sum int64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		sum += v
	}
	return sum
}

// sysBusy: the machine's busy CPU time (all CPUs) in clock ticks.
func sysBusy() int64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return busy
}

// ------------------------------------------------------------------ helpers

func fail(code int, format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "cri-bench: "+msg)
	line, _ := json.Marshal(map[string]interface{}{"ok": false, "error": msg})
	os.Stdout.Write(append(line, '\n'))
	os.Exit(code)
}

func dial(sock string) *grpc.ClientConn {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "unix://"+sock,
		grpc.WithInsecure(), grpc.WithBlock(), grpc.FailOnNonTempDialError(true),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		fail(3, "dial %s: %v", sock, err)
	}
	return conn
}

func call(conn *grpc.ClientConn, method string, req []byte, timeout time.Duration) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp []byte
	t0 := time.Now()
	err := conn.Invoke(ctx, method, req, &resp)
	return resp, time.Since(t0), err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile by nearest rank.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func emit(v interface{}) {
	line, _ := json.Marshal(v)
	os.Stdout.Write(append(line, '\n'))
}

// ------------------------------------------------------------------ commands

type opStats struct {
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
	WallS  float64 `json:"wall_s"`
	// CPU over the phase, per pod: the server process (with its waited-for
	// children) and the whole machine (shims, runc, CNI plugins, ...).
	ServerCPUms  float64 `json:"server_cpu_ms_per_pod"`
	MachineCPUms float64 `json:"machine_cpu_ms_per_pod"`
}

type podsResult struct {
	Kind     string  `json:"kind"`
	Label    string  `json:"label"`
	PidMode  string  `json:"pid"`
	Count    int     `json:"count"`
	Parallel int     `json:"parallel"`
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	Run      opStats `json:"run"`
	Stop     opStats `json:"stop"`
	Remove   opStats `json:"remove"`
	Teardown opStats `json:"teardown"` // stop + remove of one pod
}

func runPhase(n, parallel int, serverPID int, work func(i int) error) (time.Duration, float64, float64, []error) {
	c0, b0 := procCPU(serverPID), sysBusy()
	t0 := time.Now()
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = work(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(t0)
	c1, b1 := procCPU(serverPID), sysBusy()
	per := func(ticks int64) float64 { return float64(ticks) * 1000 / clkTck / float64(n) }
	return wall, per(c1 - c0), per(b1 - b0), errs
}

func stats(lat []float64, wall time.Duration, scpu, mcpu float64) opStats {
	var ok []float64
	for _, x := range lat {
		if x >= 0 {
			ok = append(ok, x)
		}
	}
	return opStats{P50ms: pct(ok, 50), P99ms: pct(ok, 99), MeanMs: mean(ok), MaxMs: pct(ok, 100),
		WallS: wall.Seconds(), ServerCPUms: scpu, MachineCPUms: mcpu}
}

func cmdPods(args []string) {
	fs := flag.NewFlagSet("pods", flag.ExitOnError)
	sock := fs.String("socket", "", "CRI socket")
	label := fs.String("label", "", "server label")
	count := fs.Int("count", 50, "pods")
	parallel := fs.Int("parallel", 1, "concurrent workers")
	pid := fs.String("pid", "container", "pid namespace: container (kubelet default) or pod (shareProcessNamespace)")
	logDir := fs.String("log-dir", "", "parent of the pods' log directories (created)")
	serverPID := fs.Int("server-pid", 0, "server pid (CPU accounting)")
	prefix := fs.String("prefix", "bench", "pod name prefix (unique per run)")
	timeout := fs.Duration("timeout", 2*time.Minute, "per-call timeout")
	fs.Parse(args)
	if *sock == "" || *label == "" || *count < 1 || *parallel < 1 {
		fail(2, "pods: --socket, --label, --count >= 1, --parallel >= 1")
	}
	pidMode := uint64(nsModeContaner)
	if *pid == "pod" {
		pidMode = nsModePod
	} else if *pid != "container" {
		fail(2, "--pid container|pod")
	}
	conn := dial(*sock)
	defer conn.Close()
	n := *count
	ids := make([]string, n)
	runLat, stopLat, rmLat, tdLat := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	r := podsResult{Kind: "pods", Label: *label, PidMode: *pid, Count: n, Parallel: *parallel}
	note := func(errs []error) {
		for _, e := range errs {
			if e != nil {
				r.Errors++
				if r.FirstErr == "" {
					r.FirstErr = e.Error()
				}
			}
		}
	}
	wall, scpu, mcpu, errs := runPhase(n, *parallel, *serverPID, func(i int) error {
		name := fmt.Sprintf("%s-%d", *prefix, i)
		uid := fmt.Sprintf("%s-uid-%d", *prefix, i)
		ld := ""
		if *logDir != "" {
			ld = filepath.Join(*logDir, name)
			os.MkdirAll(ld, 0o755)
		}
		resp, d, err := call(conn, mRunPod, encodeRunPod(name, uid, "bench", ld, pidMode), *timeout)
		runLat[i] = ms(d)
		if err != nil {
			runLat[i] = -1
			return fmt.Errorf("RunPodSandbox %s: %v", name, err)
		}
		m, err := decodeStrings(resp)
		if err != nil || m[1] == "" {
			runLat[i] = -1
			return fmt.Errorf("RunPodSandbox %s: no pod_sandbox_id", name)
		}
		ids[i] = m[1]
		return nil
	})
	note(errs)
	r.Run = stats(runLat, wall, scpu, mcpu)

	// Teardown: stop then remove each pod (both timed), PARALLEL at a time.
	var sw, rw time.Duration
	var mu sync.Mutex
	wall, scpu, mcpu, errs = runPhase(n, *parallel, *serverPID, func(i int) error {
		stopLat[i], rmLat[i], tdLat[i] = -1, -1, -1
		if ids[i] == "" {
			return nil
		}
		_, d1, err := call(conn, mStopPod, encodeID(ids[i]), *timeout)
		if err != nil {
			return fmt.Errorf("StopPodSandbox %s: %v", ids[i], err)
		}
		stopLat[i] = ms(d1)
		_, d2, err := call(conn, mRemovePod, encodeID(ids[i]), *timeout)
		if err != nil {
			return fmt.Errorf("RemovePodSandbox %s: %v", ids[i], err)
		}
		rmLat[i], tdLat[i] = ms(d2), ms(d1+d2)
		mu.Lock()
		sw += d1
		rw += d2
		mu.Unlock()
		return nil
	})
	note(errs)
	r.Teardown = stats(tdLat, wall, scpu, mcpu)
	r.Stop = stats(stopLat, 0, 0, 0)
	r.Remove = stats(rmLat, 0, 0, 0)
	emit(r)
	if r.Errors > 0 {
		os.Exit(1)
	}
}

func cmdPull(args []string) {
	fs := flag.NewFlagSet("pull", flag.ExitOnError)
	sock := fs.String("socket", "", "CRI socket")
	label := fs.String("label", "", "server label")
	image := fs.String("image", "", "image reference")
	serverPID := fs.Int("server-pid", 0, "server pid (CPU accounting)")
	timeout := fs.Duration("timeout", 10*time.Minute, "call timeout")
	fs.Parse(args)
	if *sock == "" || *image == "" {
		fail(2, "pull: --socket and --image")
	}
	conn := dial(*sock)
	defer conn.Close()
	c0, b0 := procCPU(*serverPID), sysBusy()
	resp, d, err := call(conn, mPullImage, encodeImage(*image), *timeout)
	c1, b1 := procCPU(*serverPID), sysBusy()
	if err != nil {
		fail(1, "PullImage %s: %v", *image, err)
	}
	m, _ := decodeStrings(resp)
	emit(map[string]interface{}{"kind": "pull", "label": *label, "image": *image, "image_ref": m[1],
		"seconds": d.Seconds(), "server_cpu_s": float64(c1-c0) / clkTck, "machine_cpu_s": float64(b1-b0) / clkTck})
}

func cmdRemoveImage(args []string) {
	fs := flag.NewFlagSet("remove-image", flag.ExitOnError)
	sock := fs.String("socket", "", "CRI socket")
	image := fs.String("image", "", "image reference")
	fs.Parse(args)
	conn := dial(*sock)
	defer conn.Close()
	if _, _, err := call(conn, mRemoveImage, encodeImage(*image), time.Minute); err != nil {
		fail(1, "RemoveImage %s: %v", *image, err)
	}
}

func cmdProbe(args []string) {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	sock := fs.String("socket", "", "CRI socket")
	fs.Parse(args)
	if st, err := os.Stat(*sock); err != nil || st.Mode()&os.ModeSocket == 0 {
		fail(1, "%s: not a socket", *sock)
	}
	conn := dial(*sock)
	defer conn.Close()
	var b []byte
	b = str(b, 1, "0.1.0")
	resp, _, err := call(conn, mVersion, b, 2*time.Second)
	if err != nil {
		fail(1, "Version: %v", err)
	}
	m, _ := decodeStrings(resp)
	emit(map[string]string{"runtime_name": m[2], "runtime_version": m[3], "runtime_api_version": m[4]})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cri-bench probe|pods|pull|remove-image|report ... (see main.go)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "probe":
		cmdProbe(os.Args[2:])
	case "pods":
		cmdPods(os.Args[2:])
	case "pull":
		cmdPull(os.Args[2:])
	case "remove-image":
		cmdRemoveImage(os.Args[2:])
	case "report":
		cmdReport(os.Args[2:])
	default:
		fail(2, "unknown command %q", os.Args[1])
	}
}
