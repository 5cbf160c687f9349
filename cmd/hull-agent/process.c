/*
 * Containers and their processes, run with runc in the guest.
 *
 * Every runc call is a child process the loop waits for (struct command); the call that asked for it is answered
 * when it has ended. Container init processes and detached exec processes become the agent's children once runc
 * has exited (the agent is PID 1), so their exits arrive as SIGCHLD like everything else. A process can end before
 * the agent has read its pid file (a short exec): exits of unknown pids are kept for a while for that case.
 *
 * Per container, the guest keeps /run/hull/c/<id>/: config.json (the bundle; its rootfs is on the 9p share),
 * runc.log, the pid files and exec process specs. Console sockets live in /run/hull/console while runc runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"
#include "agent.pb-c.h"

static struct process *processes;
static struct command *commands;

/* Exits of pids no process had yet (a short-lived exec reaped before its pid file was read). */
#define ORPHANS 64
static struct {
    pid_t pid;
    int status;
    int64_t at;
} orphans[ORPHANS];
static size_t next_orphan;

struct process *process_first(void) { return processes; }
struct command *command_first(void) { return commands; }

struct process *process_find(const char *container_id, const char *exec_id)
{
    for (struct process *p = processes; p; p = p->next)
        if (!strcmp(p->container_id, container_id) && !strcmp(p->exec_id, exec_id)) return p;
    return NULL;
}

static void container_dir(char *out, size_t size, const char *id)
{
    snprintf(out, size, CONTAINERS_DIR "/%s", id);
}

static const char *process_name(const struct process *p, char *out, size_t size)
{
    if (p->exec_id[0]) snprintf(out, size, "exec \"%s\" of container \"%s\"", p->exec_id, p->container_id);
    else snprintf(out, size, "container \"%s\"", p->container_id);
    return out;
}

static struct process *process_add(const char *id, const char *exec_id)
{
    struct process *p = xcalloc(1, sizeof *p);
    snprintf(p->container_id, sizeof p->container_id, "%s", id);
    snprintf(p->exec_id, sizeof p->exec_id, "%s", exec_id);
    p->tty = -1;
    p->status = PROC_CREATING;
    p->next = processes;
    processes = p;
    return p;
}

static void process_remove(struct process *victim)
{
    for (struct process **pp = &processes; *pp; pp = &(*pp)->next) {
        if (*pp != victim) continue;
        *pp = victim->next;
        for (size_t i = 0; i < victim->nwaiters; i++)
            reply_error(&victim->waiters[i], CODE_NOT_FOUND, "the process was deleted before it exited");
        free(victim->waiters);
        if (victim->stdin_stream) stream_destroy(victim->stdin_stream);
        if (victim->stdout_stream) stream_destroy(victim->stdout_stream);
        if (victim->stderr_stream) stream_destroy(victim->stderr_stream);
        if (victim->tty >= 0) close(victim->tty);
        for (struct command *c = commands; c; c = c->next)
            if (c->proc == victim) c->proc = NULL;
        free(victim);
        return;
    }
}

/* ---------------------------------------------------------------- exits */

static void fill_exit(Hull__Microvm__Agent__V1__ProcessExit *e, const struct process *p)
{
    e->exit_code = p->exit_code;
    e->exited_at_unix_nano = p->exited_at;
    e->oom_killed = p->oom_killed;
}

/* memory.events of the container's cgroup counts OOM kills (cgroup v2). */
static bool oom_killed(const char *id)
{
    char path[512];
    snprintf(path, sizeof path, CGROUP_ROOT "/" CGROUP_PARENT "/%s/memory.events", id);
    char *text = read_file(path, 4096);
    if (!text) return false;
    char *line = strstr(text, "oom_kill ");
    bool killed = line && atol(line + 9) > 0;
    free(text);
    return killed;
}

static void process_exited(struct process *p, int status, int64_t at)
{
    p->status = PROC_EXITED;
    p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
    p->exited_at = at;
    if (!p->exec_id[0]) p->oom_killed = oom_killed(p->container_id);
    char name[300];
    log_msg("%s (pid %d) exited with code %d", process_name(p, name, sizeof name), p->pid, p->exit_code);
    Hull__Microvm__Agent__V1__ProcessExit e = HULL__MICROVM__AGENT__V1__PROCESS_EXIT__INIT;
    fill_exit(&e, p);
    for (size_t i = 0; i < p->nwaiters; i++) reply_ok(&p->waiters[i], &e.base);
    free(p->waiters);
    p->waiters = NULL;
    p->nwaiters = 0;
}

/* Gives a process whose pid just became known the exit that was reaped before. */
static void claim_orphan(struct process *p)
{
    for (size_t i = 0; i < ORPHANS; i++)
        if (orphans[i].pid == p->pid) {
            orphans[i].pid = 0;
            process_exited(p, orphans[i].status, orphans[i].at);
            return;
        }
}

static void command_finish_if_done(struct command *cmd);

void reap_children(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        bool known = false;
        for (struct command *c = commands; c && !known; c = c->next)
            if (c->pid == pid) {
                c->exited = true;
                c->wait_status = status;
                command_finish_if_done(c);
                known = true;
            }
        for (struct process *p = processes; p && !known; p = p->next)
            if (p->pid == pid && p->status != PROC_EXITED) {
                process_exited(p, status, now_unix_nano());
                known = true;
            }
        if (!known) {
            orphans[next_orphan].pid = pid;
            orphans[next_orphan].status = status;
            orphans[next_orphan].at = now_unix_nano();
            next_orphan = (next_orphan + 1) % ORPHANS;
        }
    }
}

/* ---------------------------------------------------------------- commands */

/* Starts argv as a child. stdio: fds for 0/1/2, or -1 for /dev/null (0) / the command's output pipe (1, 2). */
static struct command *command_start(char *const argv[], const int stdio[3], struct call *call)
{
    int out[2] = {-1, -1};
    bool capture = stdio[1] < 0 || stdio[2] < 0;
    if (capture && pipe2(out, O_CLOEXEC) < 0) return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        if (capture) {
            close(out[0]);
            close(out[1]);
        }
        return NULL;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int in = stdio[0] >= 0 ? stdio[0] : open("/dev/null", O_RDONLY);
        int o = stdio[1] >= 0 ? stdio[1] : out[1];
        int e = stdio[2] >= 0 ? stdio[2] : out[1];
        /* dup2 clears close-on-exec on the copies; the originals are close-on-exec. */
        if (dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        setsid();
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    struct command *cmd = xcalloc(1, sizeof *cmd);
    cmd->pid = pid;
    cmd->out_fd = -1;
    if (capture) {
        close(out[1]);
        cmd->out_fd = out[0];
        set_nonblock(cmd->out_fd);
    }
    if (call) cmd->call = *call;
    cmd->next = commands;
    commands = cmd;
    return cmd;
}

void command_on_output(struct command *cmd)
{
    char chunk[4096];
    for (;;) {
        ssize_t n = read(cmd->out_fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) break;
        if (cmd->output.len < 16384) buf_append(&cmd->output, chunk, (size_t)n);
    }
    close(cmd->out_fd);
    cmd->out_fd = -1;
    command_finish_if_done(cmd);
}

static void command_finish_if_done(struct command *cmd)
{
    if (!cmd->exited || cmd->out_fd >= 0) return;
    for (struct command **pp = &commands; *pp; pp = &(*pp)->next)
        if (*pp == cmd) {
            *pp = cmd->next;
            break;
        }
    buf_append(&cmd->output, "", 1);
    if (cmd->done) cmd->done(cmd);
    buf_free(&cmd->output);
    free(cmd->pid_file);
    free(cmd->log_file);
    free(cmd);
}

static bool command_ok(const struct command *cmd)
{
    return WIFEXITED(cmd->wait_status) && WEXITSTATUS(cmd->wait_status) == 0;
}

/* runc's own words for a failure: its --log file (create/exec) or its output, trimmed. */
static char *command_error(const struct command *cmd)
{
    char *text = cmd->log_file ? read_file_from(cmd->log_file, cmd->log_offset, 2048) : NULL;
    if (!text || !text[0]) {
        free(text);
        text = xstrdup(cmd->output.data ? (const char *)cmd->output.data : "");
    }
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = 0;
    if (!len) {
        free(text);
        text = xmalloc(64);
        snprintf(text, 64, "exit status %d", WIFEXITED(cmd->wait_status) ? WEXITSTATUS(cmd->wait_status) : -1);
    }
    return text;
}

static int read_pid_file(const char *path)
{
    char *text = read_file(path, 32);
    int pid = text ? atoi(text) : 0;
    free(text);
    return pid;
}

/* ---------------------------------------------------------------- stdio */

struct stdio_setup {
    int child[3];          /* what runc gets as 0, 1, 2 (-1: /dev/null) */
    int ours[3];           /* our ends: stdin write, stdout read, stderr read */
    int console_listener;
    char console_path[108];
};

static void stdio_close_child(struct stdio_setup *s)
{
    for (int i = 0; i < 3; i++)
        if (s->child[i] >= 0) close(s->child[i]);
}

static void stdio_close_all(struct stdio_setup *s)
{
    stdio_close_child(s);
    for (int i = 0; i < 3; i++)
        if (s->ours[i] >= 0) close(s->ours[i]);
    if (s->console_listener >= 0) close(s->console_listener);
    if (s->console_path[0]) unlink(s->console_path);
}

/* Pipes for stdio, or (terminal) a console socket runc hands the terminal's master side to. */
static int stdio_prepare(struct stdio_setup *s, bool terminal, bool stdin)
{
    static unsigned console_counter;
    for (int i = 0; i < 3; i++) s->child[i] = s->ours[i] = -1;
    s->console_listener = -1;
    s->console_path[0] = 0;
    if (terminal) {
        /* A short path of its own: a socket path has room for 107 bytes, a container's directory name is 64. */
        snprintf(s->console_path, sizeof s->console_path, CONSOLE_DIR "/%u.sock", ++console_counter);
        unlink(s->console_path);
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        if (strlen(s->console_path) >= sizeof addr.sun_path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(addr.sun_path, s->console_path);
        s->console_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->console_listener < 0 || bind(s->console_listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
            listen(s->console_listener, 1) < 0)
            return -1;
        return 0;
    }
    int p[2];
    if (stdin) {
        if (pipe2(p, O_CLOEXEC) < 0) return -1;
        s->child[0] = p[0];
        s->ours[0] = p[1];
    }
    for (int i = 1; i < 3; i++) {
        if (pipe2(p, O_CLOEXEC) < 0) return -1;
        s->child[i] = p[1];
        s->ours[i] = p[0];
    }
    return 0;
}

/* runc connected to the console socket and sent the master fd (SCM_RIGHTS) before it exited. */
static int receive_console(int listener)
{
    int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) return -1;
    char data[256];
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    close(conn);
    struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* Our ends become streams of the process (terminal: one master fd, duplicated for the stdin direction). */
static int attach_streams(struct process *p, struct stdio_setup *s, bool terminal, bool stdin)
{
    if (terminal) {
        int master = receive_console(s->console_listener);
        if (master < 0) return -1;
        p->tty = master;
        p->stdout_stream = stream_new(fcntl(master, F_DUPFD_CLOEXEC, 0), -1, false)->id;
        if (stdin) p->stdin_stream = stream_new(-1, fcntl(master, F_DUPFD_CLOEXEC, 0), false)->id;
    } else {
        if (s->ours[0] >= 0) p->stdin_stream = stream_new(-1, s->ours[0], false)->id;
        p->stdout_stream = stream_new(s->ours[1], -1, false)->id;
        p->stderr_stream = stream_new(s->ours[2], -1, false)->id;
        s->ours[0] = s->ours[1] = s->ours[2] = -1;
    }
    return 0;
}

static void reply_started(struct call *call, const struct process *p)
{
    Hull__Microvm__Agent__V1__ProcessStarted r = HULL__MICROVM__AGENT__V1__PROCESS_STARTED__INIT;
    r.pid = (uint32_t)p->pid;
    r.stdin_stream = p->stdin_stream;
    r.stdout_stream = p->stdout_stream;
    r.stderr_stream = p->stderr_stream;
    reply_ok(call, &r.base);
}

/* ---------------------------------------------------------------- create / exec */

struct pending_stdio {
    struct stdio_setup stdio;
    bool terminal, stdin;
};

static void start_finished(struct command *cmd, bool is_exec)
{
    struct process *p = cmd->proc;
    struct pending_stdio *ps = cmd->data;
    char name[300];
    if (!p) {
        reply_error(&cmd->call, CODE_NOT_FOUND, "the container was deleted while it was being created");
    } else if (!command_ok(cmd)) {
        char *err = command_error(cmd);
        reply_error(&cmd->call, CODE_INTERNAL, "runc %s %s: %s", is_exec ? "exec" : "create",
                    process_name(p, name, sizeof name), err);
        free(err);
        process_remove(p);
    } else {
        p->pid = read_pid_file(cmd->pid_file);
        if (p->pid <= 0 || attach_streams(p, &ps->stdio, ps->terminal, ps->stdin) < 0) {
            reply_error(&cmd->call, CODE_INTERNAL, "%s: runc succeeded but %s",
                        process_name(p, name, sizeof name), p->pid <= 0 ? "wrote no pid file" : "sent no terminal");
            if (p->pid > 0) kill(p->pid, SIGKILL);
            process_remove(p);
        } else {
            p->status = is_exec ? PROC_RUNNING : PROC_CREATED;
            log_msg("%s: %s, pid %d", process_name(p, name, sizeof name), is_exec ? "started" : "created", p->pid);
            reply_started(&cmd->call, p);
            claim_orphan(p);
        }
    }
    stdio_close_all(&ps->stdio);
    free(ps);
}

static void create_finished(struct command *cmd) { start_finished(cmd, false); }
static void exec_finished(struct command *cmd) { start_finished(cmd, true); }

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/*
 * Runs "runc --root R --log <dir>/runc.log <args...> [--console-socket S] <id>" with the process's stdio; the
 * command's end answers the call. name is "init" or "exec-<exec id>": the pid file and console socket use it.
 */
static void start_runc(struct call *call, struct process *p, const char *const args[], bool terminal, bool stdin,
                       void (*done)(struct command *))
{
    char dir[512], log_file[600], pid_file[800], name[MAX_ID + 8], pname[300];
    container_dir(dir, sizeof dir, p->container_id);
    if (p->exec_id[0]) snprintf(name, sizeof name, "exec-%s", p->exec_id);
    else snprintf(name, sizeof name, "init");
    snprintf(log_file, sizeof log_file, "%s/runc.log", dir);
    snprintf(pid_file, sizeof pid_file, "%s/%s.pid", dir, name);

    struct pending_stdio *ps = xcalloc(1, sizeof *ps);
    ps->terminal = terminal;
    ps->stdin = stdin;
    if (stdio_prepare(&ps->stdio, terminal, stdin) < 0) {
        reply_error(call, CODE_INTERNAL, "%s: cannot set up stdio: %s", process_name(p, pname, sizeof pname),
                    strerror(errno));
        stdio_close_all(&ps->stdio);
        free(ps);
        process_remove(p);
        return;
    }
    const char *argv[32];
    int n = 0;
    argv[n++] = RUNC_BIN;
    argv[n++] = "--root";
    argv[n++] = RUNC_ROOT;
    argv[n++] = "--log";
    argv[n++] = log_file;
    for (int i = 0; args[i] && n < 24; i++) argv[n++] = args[i];
    argv[n++] = "--pid-file";
    argv[n++] = pid_file;
    if (terminal) {
        argv[n++] = "--console-socket";
        argv[n++] = ps->stdio.console_path;
    }
    argv[n++] = p->container_id;
    argv[n] = NULL;

    off_t log_offset = file_size(log_file);
    struct command *cmd = command_start((char *const *)argv, ps->stdio.child, call);
    if (!cmd) {
        reply_error(call, CODE_INTERNAL, "%s: cannot start runc: %s", process_name(p, pname, sizeof pname),
                    strerror(errno));
        stdio_close_all(&ps->stdio);
        free(ps);
        process_remove(p);
        return;
    }
    /* runc has its copies now; ours would keep the process's stdout open forever. */
    stdio_close_child(&ps->stdio);
    cmd->proc = p;
    cmd->done = done;
    cmd->data = ps;
    cmd->log_file = xstrdup(log_file);
    cmd->log_offset = log_offset;
    cmd->pid_file = xstrdup(pid_file);
}

void process_create(struct call *call, const char *id, const uint8_t *config, size_t len, bool terminal, bool stdin)
{
    if (!valid_id(id)) {
        reply_error(call, CODE_INVALID_ARGUMENT, "container id \"%s\" is not valid", id);
        return;
    }
    if (process_find(id, "")) {
        reply_error(call, CODE_ALREADY_EXISTS, "container \"%s\" already exists", id);
        return;
    }
    char dir[512], path[600];
    container_dir(dir, sizeof dir, id);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (mkdir_p(dir, 0700) < 0 || write_file(path, config, len) < 0) {
        reply_error(call, CODE_INTERNAL, "container \"%s\": cannot write its bundle: %s", id, strerror(errno));
        return;
    }
    const char *args[] = {"create", "--bundle", dir, NULL};
    start_runc(call, process_add(id, ""), args, terminal, stdin, create_finished);
}

void process_exec(struct call *call, const char *id, const char *exec_id, const uint8_t *spec, size_t len,
                  bool terminal, bool stdin)
{
    struct process *init = process_find(id, "");
    if (!init) {
        reply_error(call, CODE_NOT_FOUND, "container \"%s\" not found", id);
        return;
    }
    if (init->status != PROC_RUNNING) {
        reply_error(call, CODE_FAILED_PRECONDITION, "container \"%s\" is not running", id);
        return;
    }
    if (!valid_id(exec_id)) {
        reply_error(call, CODE_INVALID_ARGUMENT, "exec id \"%s\" is not valid", exec_id);
        return;
    }
    if (process_find(id, exec_id)) {
        reply_error(call, CODE_ALREADY_EXISTS, "exec \"%s\" of container \"%s\" already exists", exec_id, id);
        return;
    }
    char dir[512], spec_file[800];
    container_dir(dir, sizeof dir, id);
    snprintf(spec_file, sizeof spec_file, "%s/exec-%s.json", dir, exec_id);
    if (write_file(spec_file, spec, len) < 0) {
        reply_error(call, CODE_INTERNAL, "exec \"%s\": cannot write its process spec: %s", exec_id, strerror(errno));
        return;
    }
    const char *args[] = {"exec", "--detach", "--process", spec_file, NULL};
    start_runc(call, process_add(id, exec_id), args, terminal, stdin, exec_finished);
}

/* ---------------------------------------------------------------- start, signal, wait, delete */

static void start_finished_cb(struct command *cmd)
{
    struct process *p = cmd->proc;
    if (!p) {
        reply_error(&cmd->call, CODE_NOT_FOUND, "the container was deleted while it was being started");
        return;
    }
    if (!command_ok(cmd)) {
        char *err = command_error(cmd);
        reply_error(&cmd->call, CODE_INTERNAL, "runc start container \"%s\": %s", p->container_id, err);
        free(err);
        return;
    }
    if (p->status == PROC_CREATED) p->status = PROC_RUNNING; /* unless it has already exited */
    reply_ok(&cmd->call, NULL);
}

/* Runs a runc subcommand whose output is its error message; done answers the call. NULL: failed, answered. */
static struct command *run_runc(struct call *call, struct process *p, char *const args[],
                                void (*done)(struct command *))
{
    char *argv[24];
    int n = 0;
    argv[n++] = RUNC_BIN;
    argv[n++] = "--root";
    argv[n++] = RUNC_ROOT;
    for (int i = 0; args[i] && n < 23; i++) argv[n++] = args[i];
    argv[n] = NULL;
    const int stdio[3] = {-1, -1, -1};
    struct command *cmd = command_start(argv, stdio, call);
    if (!cmd) {
        reply_error(call, CODE_INTERNAL, "cannot start runc: %s", strerror(errno));
        return NULL;
    }
    cmd->proc = p;
    cmd->done = done;
    return cmd;
}

void process_start(struct call *call, const char *id)
{
    struct process *p = process_find(id, "");
    if (!p) {
        reply_error(call, CODE_NOT_FOUND, "container \"%s\" not found", id);
        return;
    }
    if (p->status != PROC_CREATED) {
        reply_error(call, CODE_FAILED_PRECONDITION, "container \"%s\" is not in the created state", id);
        return;
    }
    char *args[] = {"start", (char *)id, NULL};
    run_runc(call, p, args, start_finished_cb);
}

static void signal_finished(struct command *cmd)
{
    if (command_ok(cmd)) {
        reply_ok(&cmd->call, NULL);
        return;
    }
    char *err = command_error(cmd);
    /* The container has stopped meanwhile: nothing left to signal is success. */
    if (strstr(err, "not running") || strstr(err, "container not") || strstr(err, "does not exist"))
        reply_ok(&cmd->call, NULL);
    else
        reply_error(&cmd->call, CODE_INTERNAL, "runc kill: %s", err);
    free(err);
}

void process_signal(struct call *call, const char *id, const char *exec_id, uint32_t sig, bool all)
{
    struct process *p = process_find(id, exec_id);
    if (!p) {
        reply_error(call, CODE_NOT_FOUND, "process \"%s\" of container \"%s\" not found", exec_id, id);
        return;
    }
    if (sig == 0 || sig > 64) {
        reply_error(call, CODE_INVALID_ARGUMENT, "signal %u is not valid", sig);
        return;
    }
    if (p->status == PROC_EXITED || p->status == PROC_CREATING) {
        reply_ok(call, NULL);
        return;
    }
    if (all && !exec_id[0]) {
        char signame[16];
        snprintf(signame, sizeof signame, "%u", sig);
        char *args[] = {"kill", "--all", (char *)id, signame, NULL};
        run_runc(call, p, args, signal_finished);
        return;
    }
    /* Not reaped yet, so the pid cannot have been reused. */
    if (kill(p->pid, (int)sig) < 0 && errno != ESRCH) {
        reply_error(call, CODE_INTERNAL, "kill %d: %s", p->pid, strerror(errno));
        return;
    }
    reply_ok(call, NULL);
}

void process_wait(struct call *call, const char *id, const char *exec_id)
{
    struct process *p = process_find(id, exec_id);
    if (!p) {
        reply_error(call, CODE_NOT_FOUND, "process \"%s\" of container \"%s\" not found", exec_id, id);
        return;
    }
    if (p->status == PROC_EXITED) {
        Hull__Microvm__Agent__V1__ProcessExit e = HULL__MICROVM__AGENT__V1__PROCESS_EXIT__INIT;
        fill_exit(&e, p);
        reply_ok(call, &e.base);
        return;
    }
    p->waiters = realloc(p->waiters, (p->nwaiters + 1) * sizeof *p->waiters);
    if (!p->waiters) abort();
    p->waiters[p->nwaiters++] = *call;
}

void process_delete(struct call *call, const char *id, const char *exec_id)
{
    if (!exec_id[0]) {
        reply_error(call, CODE_INVALID_ARGUMENT, "DeleteProcess is for exec processes; use DeleteContainer");
        return;
    }
    struct process *p = process_find(id, exec_id);
    if (!p) {
        reply_ok(call, NULL);
        return;
    }
    if (p->status != PROC_EXITED) {
        reply_error(call, CODE_FAILED_PRECONDITION, "exec \"%s\" of container \"%s\" has not exited", exec_id, id);
        return;
    }
    char dir[512], path[800];
    container_dir(dir, sizeof dir, id);
    const char *suffixes[] = {"json", "pid"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/exec-%s.%s", dir, exec_id, suffixes[i]);
        unlink(path);
    }
    process_remove(p);
    reply_ok(call, NULL);
}

static void delete_finished(struct command *cmd)
{
    const char *id = cmd->data;
    char *err = command_ok(cmd) ? NULL : command_error(cmd);
    if (err && !strstr(err, "does not exist") && !strstr(err, "not exist")) {
        reply_error(&cmd->call, CODE_INTERNAL, "runc delete container \"%s\": %s", id, err);
    } else {
        /* Every process of the container goes, with its streams (their host readers get NOT_FOUND). */
        for (struct process *p = processes, *next; p; p = next) {
            next = p->next;
            if (!strcmp(p->container_id, id)) process_remove(p);
        }
        char dir[512];
        container_dir(dir, sizeof dir, id);
        remove_tree(dir);
        log_msg("container \"%s\" deleted", id);
        reply_ok(&cmd->call, NULL);
    }
    free(err);
    free(cmd->data);
}

void container_delete(struct call *call, const char *id)
{
    if (!valid_id(id)) {
        reply_error(call, CODE_INVALID_ARGUMENT, "container id \"%s\" is not valid", id);
        return;
    }
    char *args[] = {"delete", "--force", (char *)id, NULL};
    struct command *cmd = run_runc(call, process_find(id, ""), args, delete_finished);
    if (cmd) cmd->data = xstrdup(id);
}

static void update_finished(struct command *cmd)
{
    if (command_ok(cmd)) {
        reply_ok(&cmd->call, NULL);
        return;
    }
    char *err = command_error(cmd);
    reply_error(&cmd->call, CODE_INTERNAL, "runc update: %s", err);
    free(err);
}

void container_update(struct call *call, const char *id, const uint8_t *resources, size_t len)
{
    struct process *p = process_find(id, "");
    if (!p) {
        reply_error(call, CODE_NOT_FOUND, "container \"%s\" not found", id);
        return;
    }
    char dir[512], path[600];
    container_dir(dir, sizeof dir, id);
    snprintf(path, sizeof path, "%s/resources.json", dir);
    if (write_file(path, resources, len) < 0) {
        reply_error(call, CODE_INTERNAL, "container \"%s\": cannot write resources: %s", id, strerror(errno));
        return;
    }
    char *args[] = {"update", "--resources", path, (char *)id, NULL};
    run_runc(call, p, args, update_finished);
}

void process_resize(struct call *call, const char *id, const char *exec_id, uint32_t width, uint32_t height)
{
    struct process *p = process_find(id, exec_id);
    if (!p) {
        reply_error(call, CODE_NOT_FOUND, "process \"%s\" of container \"%s\" not found", exec_id, id);
        return;
    }
    if (p->tty < 0) {
        reply_ok(call, NULL); /* no terminal: nothing to resize, as conmon ignores it */
        return;
    }
    struct winsize ws = {.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
    if (ioctl(p->tty, TIOCSWINSZ, &ws) < 0) {
        reply_error(call, CODE_INTERNAL, "resizing the terminal: %s", strerror(errno));
        return;
    }
    reply_ok(call, NULL);
}

void processes_forget_calls(void)
{
    for (struct process *p = processes; p; p = p->next) {
        free(p->waiters);
        p->waiters = NULL;
        p->nwaiters = 0;
    }
    for (struct command *c = commands; c; c = c->next) c->call.active = false;
}
