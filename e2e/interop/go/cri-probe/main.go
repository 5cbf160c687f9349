// Command cri-probe is a grpc-go interop client for Hull's CRI v1 server.
//
// It uses no generated CRI code: request messages are hand-encoded with
// protowire and sent through a raw []byte codec, so it builds in GOPATH mode
// against Debian's golang-google-grpc-dev (grpc-go 1.33) and
// golang-google-protobuf-dev.
//
// Usage: cri-probe --socket PATH [options] <case>
//
// Runs one case and prints exactly ONE JSON line on stdout.
//
//	exit 0  the RPC(s) completed (whatever the gRPC status: see "ok"/"code")
//	exit 2  usage error
//	exit 3  harness failure (socket missing, could not connect, watchdog)
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	methodVersion        = "/runtime.v1.RuntimeService/Version"
	methodListContainers = "/runtime.v1.RuntimeService/CheckpointContainer" // stays UNIMPLEMENTED: Hull does not checkpoint
	methodEvents         = "/runtime.v1.RuntimeService/GetContainerEvents"
	methodV1alpha2       = "/runtime.v1alpha2.RuntimeService/Version"
)

var cases = []string{"version", "unimplemented", "deadline", "stream-cancel", "concurrent", "large", "v1alpha2"}

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

// Name is "proto" so that, should grpc-go use it as the content-subtype, the
// content-type stays a valid protobuf one. grpc-go 1.33's ForceCodec does not
// set the content-subtype, so the wire content-type is "application/grpc"
// unless --content-subtype is given.
func (rawCodec) Name() string { return "proto" }

// ------------------------------------------------------------------ protobuf

// VersionRequest { string version = 1; }
func encodeVersionRequest(version string) []byte {
	var b []byte
	if version != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, version)
	}
	return b
}

// VersionResponse { string version = 1; string runtime_name = 2;
// string runtime_version = 3; string runtime_api_version = 4; }
func decodeVersionResponse(b []byte) (map[string]interface{}, error) {
	names := map[protowire.Number]string{1: "version", 2: "runtime_name", 3: "runtime_version", 4: "runtime_api_version"}
	out := map[string]interface{}{"version": "", "runtime_name": "", "runtime_version": "", "runtime_api_version": ""}
	var unknown []int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("VersionResponse: bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		name, known := names[num]
		if known && typ == protowire.BytesType {
			s, m := protowire.ConsumeString(b)
			if m < 0 {
				return nil, fmt.Errorf("VersionResponse: field %d: %v", num, protowire.ParseError(m))
			}
			out[name] = s
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, fmt.Errorf("VersionResponse: field %d: %v", num, protowire.ParseError(m))
		}
		unknown = append(unknown, int(num))
		b = b[m:]
	}
	if len(unknown) > 0 {
		out["_unknown_fields"] = unknown
	}
	return out, nil
}

// ------------------------------------------------------------------ output

type result map[string]interface{}

var printMu sync.Mutex
var printed bool

func emit(r result, exitCode int) {
	printMu.Lock()
	if !printed {
		printed = true
		line, err := json.Marshal(r)
		if err != nil {
			line = []byte(fmt.Sprintf(`{"ok":false,"harness_error":%q}`, "json: "+err.Error()))
			exitCode = 3
		}
		os.Stdout.Write(append(line, '\n'))
	}
	os.Exit(exitCode)
}

func harnessFail(caseName, stage, msg string) {
	fmt.Fprintf(os.Stderr, "cri-probe: %s: %s\n", stage, msg)
	r := result{"ok": false, "harness_error": stage + ": " + msg}
	if caseName != "" {
		r["case"] = caseName
	}
	emit(r, 3)
}

func statusResult(err error, trailer metadata.MD) result {
	s, _ := status.FromError(err)
	r := result{"ok": s.Code() == codes.OK, "code": int(s.Code()), "codeName": codeName(s.Code()), "details": s.Message()}
	if len(trailer) > 0 {
		md := map[string]string{}
		for k, v := range trailer {
			md[k] = strings.Join(v, ",")
		}
		r["metadata"] = md
	}
	return r
}

// codeNames are the canonical gRPC status names (as grpc-js prints them), so
// both clients' JSON agrees (grpc-go's String() says "Canceled").
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
	codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
	codes.Unauthenticated: "UNAUTHENTICATED",
}

func codeName(c codes.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return c.String()
}

func ms(since time.Time) int64 { return time.Since(since).Milliseconds() }

// ------------------------------------------------------------------ main

type options struct {
	socket, authority, contentSubtype string
	size, count                       int
	deadline, cancelAfter, timeout    time.Duration
	connectTimeout                    time.Duration
}

func main() {
	var o options
	var deadlineMs, cancelMs, timeoutMs, connectMs int
	fs := flag.NewFlagSet("cri-probe", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.StringVar(&o.socket, "socket", "", "path of the CRI unix socket (required)")
	fs.StringVar(&o.authority, "authority", "", "override :authority (grpc.WithAuthority); grpc-go 1.33 defaults to \"localhost\" for unix: targets")
	fs.StringVar(&o.contentSubtype, "content-subtype", "", "send content-type application/grpc+SUBTYPE (e.g. proto) instead of application/grpc")
	fs.IntVar(&o.size, "size", 4*1024*1024, "large: version-string bytes")
	fs.IntVar(&o.count, "count", 200, "concurrent: number of parallel Version calls")
	fs.IntVar(&deadlineMs, "deadline-ms", 500, "deadline: stream deadline in ms")
	fs.IntVar(&cancelMs, "cancel-ms", 300, "stream-cancel: cancel after ms")
	fs.IntVar(&timeoutMs, "timeout-ms", 10000, "deadline for every other RPC in ms")
	fs.IntVar(&connectMs, "connect-timeout-ms", 5000, "dial (WithBlock) timeout in ms")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cri-probe --socket PATH [options] <case>\ncases: %s\noptions:\n", strings.Join(cases, " "))
		fs.PrintDefaults()
	}
	// Accept options after the case too (flag stops at the first non-flag).
	args := os.Args[1:]
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			emit(result{"ok": false, "harness_error": "usage: " + err.Error()}, 2)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usage := func(msg string) {
		fmt.Fprintf(os.Stderr, "cri-probe: %s\n", msg)
		fs.Usage()
		emit(result{"ok": false, "harness_error": "usage: " + msg}, 2)
	}
	if o.socket == "" {
		usage("--socket is required")
	}
	if len(positional) != 1 {
		usage("exactly one case is required")
	}
	c := positional[0]
	known := false
	for _, k := range cases {
		known = known || k == c
	}
	if !known {
		usage(fmt.Sprintf("unknown case %q", c))
	}
	o.deadline = time.Duration(deadlineMs) * time.Millisecond
	o.cancelAfter = time.Duration(cancelMs) * time.Millisecond
	o.timeout = time.Duration(timeoutMs) * time.Millisecond
	o.connectTimeout = time.Duration(connectMs) * time.Millisecond

	sock, err := filepath.Abs(o.socket)
	if err != nil {
		harnessFail(c, "socket", err.Error())
	}
	st, err := os.Stat(sock)
	if err != nil {
		harnessFail(c, "socket", err.Error())
	}
	if st.Mode()&os.ModeSocket == 0 {
		harnessFail(c, "socket", sock+" is not a unix socket")
	}

	// Watchdog: the harness must never hang.
	watchdog := o.connectTimeout + 2*maxDur(o.timeout, 30*time.Second, o.deadline, o.cancelAfter) + 10*time.Second
	time.AfterFunc(watchdog, func() { harnessFail(c, "watchdog", fmt.Sprintf("no result after %v", watchdog)) })

	callOpts := []grpc.CallOption{
		grpc.ForceCodec(rawCodec{}),
		grpc.MaxCallRecvMsgSize(1 << 30),
		grpc.MaxCallSendMsgSize(1 << 30),
	}
	if o.contentSubtype != "" {
		callOpts = append(callOpts, grpc.CallContentSubtype(o.contentSubtype))
	}
	dialOpts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.FailOnNonTempDialError(true),
		grpc.WithDefaultCallOptions(callOpts...),
	}
	if o.authority != "" {
		dialOpts = append(dialOpts, grpc.WithAuthority(o.authority))
	}
	target := "unix://" + sock // unix:///abs/path
	dctx, dcancel := context.WithTimeout(context.Background(), o.connectTimeout)
	conn, err := grpc.DialContext(dctx, target, dialOpts...)
	dcancel()
	if err != nil {
		msg := fmt.Sprintf("%s: %v", target, err)
		if errors.Is(err, context.DeadlineExceeded) {
			msg += fmt.Sprintf(" (not READY within %v: grpc-go needs the socket to accept and the server's HTTP/2 SETTINGS frame)", o.connectTimeout)
		}
		harnessFail(c, "connect", msg)
	}
	defer conn.Close()

	r := run(c, conn, o)
	r["case"] = c
	emit(r, 0)
}

func maxDur(ds ...time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		if d > m {
			m = d
		}
	}
	return m
}

// unary invokes method with raw request bytes; on success the raw response is in result["_raw"].
func unary(conn *grpc.ClientConn, method string, req []byte, timeout time.Duration) (result, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp []byte
	var trailer metadata.MD
	err := conn.Invoke(ctx, method, req, &resp, grpc.Trailer(&trailer))
	r := statusResult(err, trailer)
	if err != nil {
		return r, nil
	}
	return r, resp
}

func version(conn *grpc.ClientConn, v string, timeout time.Duration) result {
	r, raw := unary(conn, methodVersion, encodeVersionRequest(v), timeout)
	if raw != nil {
		dec, err := decodeVersionResponse(raw)
		if err != nil {
			r["ok"] = false
			r["decode_error"] = err.Error()
			r["response_base64"] = base64.StdEncoding.EncodeToString(raw)
		} else {
			r["response"] = dec
		}
	}
	return r
}

// events opens GetContainerEvents (server streaming) and reads until it ends,
// by deadline (deadline>0) or by client cancel after cancelAfter.
func events(conn *grpc.ClientConn, deadline, cancelAfter time.Duration) result {
	var ctx context.Context
	var cancel context.CancelFunc
	if deadline > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), deadline)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(cancelAfter, cancel)
	}
	defer cancel()
	t0 := time.Now()
	desc := &grpc.StreamDesc{StreamName: "GetContainerEvents", ServerStreams: true}
	n := 0
	headers := false
	var err error
	var cs grpc.ClientStream
	cs, err = conn.NewStream(ctx, desc, methodEvents)
	if err == nil {
		// GetEventsRequest {} — empty message.
		if err = cs.SendMsg([]byte{}); err == nil {
			err = cs.CloseSend()
		}
		if err == nil {
			for {
				var msg []byte
				if err = cs.RecvMsg(&msg); err != nil {
					break
				}
				n++
			}
		}
		// The stream is finished here, so Header() does not block.
		if _, herr := cs.Header(); herr == nil {
			headers = true
		}
	}
	if err == io.EOF {
		err = nil // server ended the stream with OK
	}
	var trailer metadata.MD
	if cs != nil {
		trailer = cs.Trailer()
	}
	r := statusResult(err, trailer)
	r["events"] = n
	r["headers_received"] = headers
	r["ms"] = ms(t0)
	return r
}

func followup(r result, conn *grpc.ClientConn, o options) result {
	f := version(conn, "v1", o.timeout)
	r["followup_ok"] = f["ok"]
	if f["ok"] != true {
		r["followup_code"] = f["code"]
		r["followup_details"] = f["details"]
	}
	return r
}

func run(c string, conn *grpc.ClientConn, o options) result {
	t0 := time.Now()
	switch c {
	case "version":
		r := version(conn, "v1", o.timeout)
		r["ms"] = ms(t0)
		return r
	case "unimplemented":
		// CheckpointContainerRequest {} — empty body.
		r, raw := unary(conn, methodListContainers, []byte{}, o.timeout)
		if raw != nil {
			r["response_base64"] = base64.StdEncoding.EncodeToString(raw)
		}
		r["ms"] = ms(t0)
		return r
	case "deadline":
		r := events(conn, o.deadline, 0)
		r["deadline_ms"] = o.deadline.Milliseconds()
		return followup(r, conn, o)
	case "stream-cancel":
		r := events(conn, 0, o.cancelAfter)
		r["cancel_ms"] = o.cancelAfter.Milliseconds()
		return followup(r, conn, o)
	case "large":
		r := version(conn, strings.Repeat("a", o.size), maxDur(o.timeout, 30*time.Second))
		r["size"] = o.size
		r["ms"] = ms(t0)
		return followup(r, conn, o)
	case "concurrent":
		var wg sync.WaitGroup
		rs := make([]result, o.count)
		for i := 0; i < o.count; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				rs[i] = version(conn, "v1", maxDur(o.timeout, 30*time.Second))
			}(i)
		}
		wg.Wait()
		ok := 0
		codeCounts := map[string]int{}
		firstErr := ""
		for _, r := range rs {
			if r["ok"] == true {
				ok++
				continue
			}
			name, _ := r["codeName"].(string)
			if de, has := r["decode_error"]; has {
				name = "DECODE_ERROR"
				r["details"] = de
			}
			codeCounts[name]++
			if firstErr == "" {
				firstErr = fmt.Sprintf("%s: %v", name, r["details"])
			}
		}
		out := result{"ok": ok == o.count, "count": o.count, "succeeded": ok, "failed": o.count - ok, "ms": ms(t0)}
		if firstErr != "" {
			out["codes"] = codeCounts
			out["first_error"] = firstErr
		}
		return out
	case "v1alpha2":
		r, raw := unary(conn, methodV1alpha2, encodeVersionRequest("v1alpha2"), o.timeout)
		if raw != nil {
			r["response_base64"] = base64.StdEncoding.EncodeToString(raw)
		}
		d, _ := r["details"].(string)
		r["mentions_v1alpha2"] = strings.Contains(d, "v1alpha2")
		r["ms"] = ms(t0)
		return r
	}
	panic("unhandled case " + c)
}
