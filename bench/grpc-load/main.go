// Command grpc-load is a closed-loop unary load driver for CRI gRPC servers
// over a unix socket. It drives Hull's hulld and containerd's CRI plugin with
// the same independent client (grpc-go, as the kubelet uses), so the two are
// measured under identical conditions.
//
// Like e2e/interop/go/cri-probe it uses no generated CRI code: requests are
// hand-encoded with protowire and passed through a raw []byte codec, so it
// builds in GOPATH mode against Debian's golang-google-grpc-dev (grpc-go 1.33)
// and golang-google-protobuf-dev (see hack/bench-grpc.sh).
//
// Usage:
//
//	grpc-load --socket PATH [--concurrency N] [--duration 10s] [--warmup 2s]
//	          [--method /runtime.v1.RuntimeService/Version] [--server-pid PID]
//	          [--label NAME] [--wait-idle 60s] [--max-other-cpu 0.25]
//	grpc-load --socket PATH --probe        one Version call, decoded (readiness)
//	grpc-load report [flags] RESULTS.jsonl markdown table of the medians
//
// The load run uses ONE client connection (the kubelet keeps one per runtime)
// and N goroutines issuing unary calls back to back (closed loop). Calls that
// complete inside the measured window (after the warm-up) are counted; it
// prints one JSON object on stdout. The JSON also says how much CPU the rest
// of the machine used during the window (other_cpu_cores), so runs disturbed
// by unrelated load can be recognised (and, with --max-other-cpu, retried).
//
// Exit codes: 0 ok, 1 the run had errors / probe failed, 2 usage, 3 harness,
// 4 the run was disturbed by other load (--max-other-cpu).
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

const methodVersion = "/runtime.v1.RuntimeService/Version"

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100 on
// every Linux architecture Hull runs on (getconf CLK_TCK); Go cannot call
// sysconf without cgo.
const clkTck = 100

// rawCodec passes pre-encoded protobuf bytes through unchanged.
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

// VersionRequest { string version = 1; } — the kubelet sends "0.1.0".
func encodeVersionRequest(version string) []byte {
	var b []byte
	if version != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, version)
	}
	return b
}

// decodeStrings decodes the string fields of a message (VersionResponse has
// only strings: version=1, runtime_name=2, runtime_version=3,
// runtime_api_version=4).
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

// procCPU returns utime+stime of a whole process (all threads, live and
// exited) in clock ticks.
func procCPU(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// procStatus returns a numeric field of /proc/PID/status (e.g. VmRSS in kB, Threads).
func procStatus(pid int, key string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line[len(key)+1:])
			if len(f) > 0 {
				v, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// sysBusy returns the machine's busy CPU time (all CPUs, everything but
// idle and iowait) from /proc/stat, in clock ticks.
func sysBusy() int64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line := strings.SplitN(string(data), "\n", 2)[0]
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return busy
}

// waitIdle waits (at most max) until the machine has been nearly idle for
// half a second: less than threshold cores busy. It returns how long it
// waited and whether it saw the machine idle.
func waitIdle(max time.Duration, threshold float64) (time.Duration, bool) {
	start := time.Now()
	const step = 500 * time.Millisecond
	for {
		b0 := sysBusy()
		time.Sleep(step)
		cores := float64(sysBusy()-b0) / clkTck / step.Seconds()
		if cores < threshold {
			return time.Since(start), true
		}
		if time.Since(start) >= max {
			return time.Since(start), false
		}
	}
}

// ------------------------------------------------------------------ load

type runResult struct {
	Label       string  `json:"label,omitempty"`
	Socket      string  `json:"socket"`
	Method      string  `json:"method"`
	Concurrency int     `json:"concurrency"`
	WarmupS     float64 `json:"warmup_s"`
	DurationS   float64 `json:"duration_s"` // between the CPU samples (the window is --duration)
	Calls       int64   `json:"calls"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	CallsPerSec float64 `json:"calls_per_s"`
	P50us       float64 `json:"p50_us"`
	P90us       float64 `json:"p90_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p999_us"`
	MaxUs       float64 `json:"max_us"`
	MeanUs      float64 `json:"mean_us"`

	ServerPID         int     `json:"server_pid,omitempty"`
	ServerCPUs        float64 `json:"server_cpu_s,omitempty"`
	ServerCPUusPerCal float64 `json:"server_cpu_us_per_call,omitempty"`
	ServerRSSkB       int64   `json:"server_rss_kb,omitempty"`
	ServerThreads     int64   `json:"server_threads,omitempty"`
	ClientCPUs        float64 `json:"client_cpu_s"`
	ClientCPUusPerCal float64 `json:"client_cpu_us_per_call"`
	// CPU time used by everything else on the machine during the window, in
	// cores (0.5 = half a core): a measure of how disturbed the run was.
	OtherCPUCores float64 `json:"other_cpu_cores"`
	IdleWaitS     float64 `json:"idle_wait_s,omitempty"`
	IdleOK        *bool   `json:"idle_ok,omitempty"`
	Disturbed     bool    `json:"disturbed,omitempty"`

	Runtime        string `json:"runtime,omitempty"`
	RuntimeVersion string `json:"runtime_version,omitempty"`
	Started        string `json:"started"`
}

type worker struct {
	lat    []int64 // ns, calls completed inside the window
	errors int64
	first  error
}

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	// nearest-rank
	k := int(p/100*float64(len(sorted))+0.999999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(sorted) {
		k = len(sorted) - 1
	}
	return float64(sorted[k]) / 1e3
}

func dial(sock string, timeout time.Duration) (*grpc.ClientConn, error) {
	st, err := os.Stat(sock)
	if err != nil {
		return nil, err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("%s is not a unix socket", sock)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return grpc.DialContext(ctx, "unix://"+sock,
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.FailOnNonTempDialError(true),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
	)
}

func versionInfo(conn *grpc.ClientConn, timeout time.Duration) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, methodVersion, encodeVersionRequest("0.1.0"), &resp); err != nil {
		return nil, err
	}
	return decodeStrings(resp)
}

func fail(code int, format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "grpc-load: "+msg)
	line, _ := json.Marshal(map[string]interface{}{"ok": false, "error": msg})
	os.Stdout.Write(append(line, '\n'))
	os.Exit(code)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		reportMain(os.Args[2:])
		return
	}
	fs := flag.NewFlagSet("grpc-load", flag.ContinueOnError)
	sock := fs.String("socket", "", "CRI unix socket path (required)")
	conc := fs.Int("concurrency", 1, "concurrent streams (goroutines issuing calls back to back on one connection)")
	dur := fs.Duration("duration", 10*time.Second, "measured window")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up before the measured window (calls not counted)")
	method := fs.String("method", methodVersion, "full gRPC method name")
	reqHex := fs.String("request-hex", "", "request message bytes in hex (default: VersionRequest{version:\"0.1.0\"} for Version, empty message otherwise)")
	pid := fs.Int("server-pid", 0, "server pid: report its CPU time during the measured window (/proc/PID/stat)")
	label := fs.String("label", "", "free-form label copied into the JSON (e.g. the server's name)")
	callTimeout := fs.Duration("call-timeout", 10*time.Second, "per-call deadline")
	connTimeout := fs.Duration("connect-timeout", 5*time.Second, "dial timeout")
	idleWait := fs.Duration("wait-idle", 0, "before starting, wait up to this long for the machine to be idle (other load < --idle-threshold cores)")
	idleThr := fs.Float64("idle-threshold", 0.15, "--wait-idle: cores busy below which the machine counts as idle")
	maxOther := fs.Float64("max-other-cpu", 0, "if > 0: exit 4 (run disturbed) when other processes used more than this many cores during the window")
	probe := fs.Bool("probe", false, "make one Version call, print the decoded response and exit (0 ok, 1 failed)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if *sock == "" || fs.NArg() != 0 || *conc < 1 || *dur <= 0 || *warm < 0 {
		fmt.Fprintln(os.Stderr, "usage: grpc-load --socket PATH [--concurrency N] [--duration D] [--warmup D] [--method M] [--server-pid PID] | --probe | report ...")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*sock)
	if err != nil {
		fail(3, "socket: %v", err)
	}

	conn, err := dial(abs, *connTimeout)
	if err != nil {
		if *probe {
			fail(1, "connect %s: %v", abs, err)
		}
		fail(3, "connect %s: %v", abs, err)
	}
	defer conn.Close()

	info, verr := versionInfo(conn, *callTimeout)
	if *probe {
		if verr != nil {
			fail(1, "Version: %v", verr)
		}
		line, _ := json.Marshal(map[string]interface{}{"ok": true, "version": info[1], "runtime_name": info[2],
			"runtime_version": info[3], "runtime_api_version": info[4]})
		os.Stdout.Write(append(line, '\n'))
		return
	}

	req := encodeVersionRequest("0.1.0")
	if *method != methodVersion {
		req = []byte{}
	}
	if *reqHex != "" {
		if req, err = hex.DecodeString(*reqHex); err != nil {
			fail(2, "--request-hex: %v", err)
		}
	}

	res := runResult{Label: *label, Socket: abs, Method: *method, Concurrency: *conc, WarmupS: warm.Seconds(),
		Started: time.Now().UTC().Format(time.RFC3339)}
	if verr == nil {
		res.Runtime, res.RuntimeVersion = info[2], info[3]
	}

	if *idleWait > 0 {
		waited, ok := waitIdle(*idleWait, *idleThr)
		res.IdleWaitS, res.IdleOK = waited.Seconds(), &ok
	}

	// Window boundaries as monotonic nanoseconds since base; set before the
	// workers start so every completion can be classified without locks.
	base := time.Now()
	winStart := int64(*warm)
	winEnd := winStart + int64(*dur)
	var stop int32

	workers := make([]*worker, *conc)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{lat: make([]int64, 0, 1<<16)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp []byte
			for atomic.LoadInt32(&stop) == 0 {
				t0 := time.Since(base)
				ctx, cancel := context.WithTimeout(context.Background(), *callTimeout)
				err := conn.Invoke(ctx, *method, req, &resp)
				cancel()
				t1 := int64(time.Since(base))
				if t1 >= winEnd {
					return
				}
				if t1 < winStart {
					continue
				}
				if err != nil {
					w.errors++
					if w.first == nil {
						w.first = err
					}
					continue
				}
				w.lat = append(w.lat, t1-int64(t0))
			}
		}()
	}

	// Sample CPU at the window's edges.
	var srv0, srv1, cli0, cli1, sys0, sys1 int64
	var t0, t1 time.Time
	self := os.Getpid()
	time.Sleep(time.Until(base.Add(time.Duration(winStart))))
	t0 = time.Now()
	sys0 = sysBusy()
	cli0, _ = procCPU(self)
	if *pid > 0 {
		if srv0, err = procCPU(*pid); err != nil {
			atomic.StoreInt32(&stop, 1)
			fail(3, "server pid %d: %v", *pid, err)
		}
	}
	time.Sleep(time.Until(base.Add(time.Duration(winEnd))))
	t1 = time.Now()
	if *pid > 0 {
		srv1, _ = procCPU(*pid)
		res.ServerRSSkB = procStatus(*pid, "VmRSS")
		res.ServerThreads = procStatus(*pid, "Threads")
	}
	cli1, _ = procCPU(self)
	sys1 = sysBusy()
	atomic.StoreInt32(&stop, 1)
	wg.Wait()

	var all []int64
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Errors += w.errors
		if w.first != nil && res.FirstError == "" {
			if s, ok := status.FromError(w.first); ok {
				res.FirstError = s.Code().String() + ": " + s.Message()
			} else {
				res.FirstError = w.first.Error()
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	// Calls are classified by the exact window [warmup, warmup+duration);
	// t0/t1 (when the CPU counters were read) may lag it by a scheduling delay.
	window := dur.Seconds()
	res.DurationS = t1.Sub(t0).Seconds()
	res.Calls = int64(len(all))
	res.CallsPerSec = float64(res.Calls) / window
	res.P50us = percentile(all, 50)
	res.P90us = percentile(all, 90)
	res.P99us = percentile(all, 99)
	res.P999us = percentile(all, 99.9)
	if len(all) > 0 {
		res.MaxUs = float64(all[len(all)-1]) / 1e3
		var sum float64
		for _, v := range all {
			sum += float64(v)
		}
		res.MeanUs = sum / float64(len(all)) / 1e3
	}
	res.ClientCPUs = float64(cli1-cli0) / clkTck
	if res.Calls > 0 {
		res.ClientCPUusPerCal = res.ClientCPUs * 1e6 / float64(res.Calls)
	}
	if *pid > 0 {
		res.ServerPID = *pid
		res.ServerCPUs = float64(srv1-srv0) / clkTck
		if res.Calls > 0 {
			res.ServerCPUusPerCal = res.ServerCPUs * 1e6 / float64(res.Calls)
		}
	}
	other := float64(sys1-sys0-(cli1-cli0)-(srv1-srv0)) / clkTck / res.DurationS
	if other < 0 {
		other = 0
	}
	res.OtherCPUCores = other
	res.Disturbed = *maxOther > 0 && other > *maxOther
	line, _ := json.Marshal(res)
	os.Stdout.Write(append(line, '\n'))
	fmt.Fprintf(os.Stderr, "    %-10s c=%-3d %9.0f calls/s  p50 %7.1f us  p99 %8.1f us  server %5.1f us/call  client %5.1f us/call  other load %.2f cores  errors %d\n",
		res.Label, res.Concurrency, res.CallsPerSec, res.P50us, res.P99us, res.ServerCPUusPerCal, res.ClientCPUusPerCal, res.OtherCPUCores, res.Errors)
	if res.Disturbed {
		os.Exit(4)
	}
	if res.Errors > 0 || res.Calls == 0 {
		os.Exit(1)
	}
}
