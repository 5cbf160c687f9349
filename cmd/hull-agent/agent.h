/*
 * hull-agent: the guest agent of Hull's microVM sandboxer (PID 1 in the guest).
 *
 * Why C: the agent runs in a minimal initramfs (busybox, runc, kernel modules) and must be a single static
 * binary. C# NativeAOT is not available on these build machines, and busybox sh cannot speak a framed binary
 * protocol (ttrpc over virtio-serial) reliably. A small static C program with protobuf-c (Debian's static
 * libprotobuf-c.a) is the smallest thing that can.
 *
 * Shape: one thread, one poll() loop. The host talks ttrpc over the virtio-serial port (channel.c); calls are
 * answered at once or parked until something happens (data on a stream, a process exit, a runc command ending).
 * runc runs as child processes whose ends are noticed through a signalfd for SIGCHLD, so a slow runc never
 * holds up another call. As PID 1 the agent also reaps every orphan (container init processes are its
 * children once runc create/exec has exited).
 */
#ifndef HULL_AGENT_H
#define HULL_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_VERSION "0.1.0"

/* Guest paths, shared with the host's config rewrite (MicroVmPaths in Hull.Sandbox). */
#define STATE_DIR "/run/hull"
#define CONTAINERS_DIR STATE_DIR "/c"
#define SHM_DIR STATE_DIR "/shm"
#define CONSOLE_DIR STATE_DIR "/console"
#define RUNC_ROOT "/run/runc"
#define RUNC_BIN "/usr/bin/runc"
#define CGROUP_ROOT "/sys/fs/cgroup"
/* The host sets linux.cgroupsPath to /hull/<container id>. */
#define CGROUP_PARENT "hull"

#define MAX_ID 128

/* gRPC status codes the agent answers with. */
enum code {
    CODE_OK = 0,
    CODE_INVALID_ARGUMENT = 3,
    CODE_NOT_FOUND = 5,
    CODE_ALREADY_EXISTS = 6,
    CODE_FAILED_PRECONDITION = 9,
    CODE_UNIMPLEMENTED = 12,
    CODE_INTERNAL = 13,
    CODE_UNAVAILABLE = 14,
};

/* ---------------------------------------------------------------- util.c */

struct buf {
    uint8_t *data;
    size_t len, cap;
};

void buf_append(struct buf *b, const void *data, size_t len);
void buf_consume(struct buf *b, size_t len);
void buf_free(struct buf *b);

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);
int64_t now_unix_nano(void);
int set_nonblock(int fd);
int write_file(const char *path, const void *data, size_t len);
/* Reads at most max bytes of a small file into a NUL-terminated string; NULL on error. */
char *read_file(const char *path, size_t max);
/* Reads what was appended to a file after offset (at most max bytes, from the end); "" on error. */
char *read_file_from(const char *path, off_t offset, size_t max);
int mkdir_p(const char *path, mode_t mode);
int remove_tree(const char *path);
bool valid_id(const char *id);
/* Runs argv and waits for it (only for set-up before containers exist); returns its wait status or -1.
 * Output goes to the console; *output gets up to 4 KiB of it when not NULL. */
int run_sync(char *const argv[], char **output);

/* ---------------------------------------------------------------- channel.c: ttrpc over virtio-serial */

/* A call to answer: the ttrpc stream id and the connection generation it came on (a reconnect drops parked
 * calls of the old generation). */
struct call {
    uint32_t stream;
    uint32_t gen;
    bool active;
};

struct ProtobufCMessage;

int channel_open(void);
int channel_fd(void);
bool channel_wants_write(void);
void channel_on_readable(void);
void channel_on_writable(void);
void channel_on_hangup(void);
/* Whether the host is (as far as the agent knows) connected; while it is not, the fd is polled less often. */
bool channel_connected(void);
void channel_flush_blocking(int timeout_ms);

void reply_ok(struct call *call, const struct ProtobufCMessage *payload);
void reply_error(struct call *call, enum code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool call_live(const struct call *call);

/* ---------------------------------------------------------------- stream.c */

struct stream {
    uint32_t id;
    int rfd;               /* read towards the host (-1: none) */
    int wfd;               /* written from the host (-1: none) */
    bool socket;           /* a port-forward connection: closing the write side is shutdown(SHUT_WR) */
    bool eof;              /* rfd reached its end */
    bool eof_delivered;    /* the host has been told */
    struct buf in;         /* read from rfd, not yet sent to the host */
    struct buf out;        /* from the host, not yet written to wfd */
    bool close_pending;    /* CloseStream arrived while out still had data */
    struct call reader;    /* a parked ReadStream */
    uint32_t reader_max;
    struct call writer;    /* a parked WriteStream (answered once out is written) */
    struct stream *next;
};

#define STREAM_IN_LIMIT (256 * 1024)
#define STREAM_READ_MAX (16 * 1024)

struct stream *stream_new(int rfd, int wfd, bool socket);
struct stream *stream_find(uint32_t id);
void stream_destroy(uint32_t id);
struct stream *stream_first(void);
void stream_on_readable(struct stream *s);
void stream_on_writable(struct stream *s);
void stream_read(struct call *call, uint32_t id, uint32_t max);
void stream_write(struct call *call, uint32_t id, const uint8_t *data, size_t len);
/* Closes the host-to-guest direction; with both (port-forward streams only), forgets the stream. */
void stream_close(struct call *call, uint32_t id, bool both);
/* Drops parked calls of dead connection generations. */
void streams_forget_calls(void);
void port_forward(struct call *call, uint32_t port);

/* ---------------------------------------------------------------- process.c */

enum process_status { PROC_CREATING, PROC_CREATED, PROC_RUNNING, PROC_EXITED };

struct process {
    char container_id[MAX_ID + 1];
    char exec_id[MAX_ID + 1];
    pid_t pid;
    enum process_status status;
    int exit_code;
    int64_t exited_at;
    bool oom_killed;
    uint32_t stdin_stream, stdout_stream, stderr_stream;
    int tty;               /* the terminal's master side (for resizing), -1 without one */
    struct call *waiters;
    size_t nwaiters;
    struct process *next;
};

/* A runc (or other helper) child the agent waits for without blocking. */
struct command {
    pid_t pid;
    int out_fd;            /* its stdout+stderr, -1 when it writes elsewhere */
    struct buf output;
    bool exited;
    int wait_status;
    void (*done)(struct command *cmd);
    struct call call;      /* the call to answer when it ends */
    struct process *proc;  /* the process it creates, if any */
    char *pid_file;
    char *log_file;        /* runc --log, read for the error of a failed create/exec */
    off_t log_offset;
    void *data;            /* what done needs besides the above (owned by done) */
    struct command *next;
};

struct process *process_find(const char *container_id, const char *exec_id);
struct process *process_first(void);
void process_create(struct call *call, const char *id, const uint8_t *config, size_t len, bool terminal, bool stdin);
void process_start(struct call *call, const char *id);
void process_exec(struct call *call, const char *id, const char *exec_id, const uint8_t *spec, size_t len,
                  bool terminal, bool stdin);
void process_signal(struct call *call, const char *id, const char *exec_id, uint32_t sig, bool all);
void process_wait(struct call *call, const char *id, const char *exec_id);
void process_delete(struct call *call, const char *id, const char *exec_id);
void container_delete(struct call *call, const char *id);
void container_update(struct call *call, const char *id, const uint8_t *resources, size_t len);
void process_resize(struct call *call, const char *id, const char *exec_id, uint32_t width, uint32_t height);
void processes_forget_calls(void);
/* SIGCHLD: reaps every child that has ended. */
void reap_children(void);
struct command *command_first(void);
void command_on_output(struct command *cmd);

/* ---------------------------------------------------------------- service.c */

void dispatch(struct call *call, const char *service, const char *method, const uint8_t *payload, size_t len);
void request_poweroff(void);
bool poweroff_requested(void);

#endif
