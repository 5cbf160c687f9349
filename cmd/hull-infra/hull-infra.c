/*
 * hull-infra: starts the infra process of a pod whose containers share one PID namespace, without runc or conmon.
 *
 *   hull-infra --root DIR --pid-file FILE [--cgroup DIR]... [--oom-score-adj N] [--user NS] [--net NS] [--ipc NS]
 *              [--uts NS] [--uid N] [--gid N] -- PROGRAM [ARG]...
 *
 * The infra process only holds the PID namespace (and reaps what is re-parented to it), so a full runc container
 * under conmon (about 75 ms of a pod's start) buys it nothing. This joins the cgroups, sets oom_score_adj, joins the
 * namespaces given (the user namespace first, so that the others, which it owns, can be joined from inside it),
 * unshares a new PID namespace and forks: the child is PID 1 there. The child starts a session of its own, puts
 * /dev/null on stdio, makes DIR (empty) the read-only root of a mount namespace of its own (pivot_root, as runc does;
 * see enter_empty_root), drops every capability (the bounding set too) and its supplementary
 * groups, becomes uid:gid, sets no_new_privs and execs PROGRAM, opened before anything else (so PROGRAM must be
 * static: catatonit is).
 *
 * Right after the fork the parent writes "<pid> <start time>" (host pid, /proc start time in clock ticks) to FILE, a
 * temporary file renamed into place, so that whoever finds FILE later (hulld after a crash) can kill exactly this
 * process. Once the exec has happened it prints the same line on stdout and exits 0; the child is not its to wait
 * for (hulld watches it with a pidfd). On any failure it prints one line on stderr, removes FILE, and exits 1 with no
 * process left behind.
 *
 * Written in C because these steps must run in a single-threaded process between fork and exec (setns into a user
 * namespace refuses a multithreaded caller), which a .NET process cannot do, and no packaged tool does them all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CGROUPS 32

struct options {
    const char *root, *pid_file, *oom_score_adj;
    const char *cgroups[MAX_CGROUPS];
    int cgroup_count;
    const char *user_ns, *net_ns, *ipc_ns, *uts_ns;
    uid_t uid;
    gid_t gid;
    char **program; /* argv of PROGRAM */
};

static void fail(const char *format, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Removed by fail(): the temporary pid file once it exists, the pid file once it is written. */
static const char *temporary_to_remove, *pid_file_to_remove;

static void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("hull-infra: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    if (temporary_to_remove) unlink(temporary_to_remove);
    if (pid_file_to_remove) unlink(pid_file_to_remove);
    exit(1);
}

static unsigned long parse_number(const char *flag, const char *text)
{
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || *text == '\0' || *end != '\0') fail("%s: \"%s\" is not a number", flag, text);
    return value;
}

static void parse(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof *o);
    o->uid = o->gid = 65535;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc) fail("%s needs a value", flag);
        const char *value = argv[++i];
        if (!strcmp(flag, "--root")) o->root = value;
        else if (!strcmp(flag, "--pid-file")) o->pid_file = value;
        else if (!strcmp(flag, "--oom-score-adj")) o->oom_score_adj = value;
        else if (!strcmp(flag, "--user")) o->user_ns = value;
        else if (!strcmp(flag, "--net")) o->net_ns = value;
        else if (!strcmp(flag, "--ipc")) o->ipc_ns = value;
        else if (!strcmp(flag, "--uts")) o->uts_ns = value;
        else if (!strcmp(flag, "--uid")) o->uid = (uid_t)parse_number(flag, value);
        else if (!strcmp(flag, "--gid")) o->gid = (gid_t)parse_number(flag, value);
        else if (!strcmp(flag, "--cgroup")) {
            if (o->cgroup_count == MAX_CGROUPS) fail("more than %d --cgroup", MAX_CGROUPS);
            o->cgroups[o->cgroup_count++] = value;
        } else fail("unknown option %s", flag);
    }
    if (i + 1 >= argc) fail("no program after --");
    if (!o->root || !o->pid_file) fail("--root and --pid-file are required");
    o->program = &argv[i + 1];
}

static int open_or_fail(const char *what, const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) fail("cannot open %s %s: %s", what, path, strerror(errno));
    return fd;
}

static void write_file(const char *what, const char *path, const char *text)
{
    int fd = open_or_fail(what, path, O_WRONLY);
    if (write(fd, text, strlen(text)) < 0) fail("cannot write \"%s\" to %s: %s", text, path, strerror(errno));
    close(fd);
}

static void join(int fd, int type, const char *what, const char *path)
{
    if (fd >= 0 && setns(fd, type) < 0) fail("cannot join the %s namespace %s: %s", what, path, strerror(errno));
}

/* Field 22 of /proc/<pid>/stat, counted after the command's closing parenthesis (the command may hold spaces); 0 when unreadable. */
static unsigned long long start_time(pid_t pid)
{
    char path[64], buffer[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (n <= 0) return 0;
    buffer[n] = '\0';
    char *p = strrchr(buffer, ')');
    for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* In the child: report why it could not exec, on the sync pipe, and go. */
static void child_fail(int sync, const char *step)
{
    char message[256];
    int n = snprintf(message, sizeof message, "%s: %s", step, strerror(errno));
    if (write(sync, message, (size_t)n) < 0) { /* nothing more to do */ }
    _exit(127);
}

/*
 * A mount namespace of its own whose only mount is DIR, read-only, as runc's pivot_root gives. A chroot would not do:
 * a process of the pod that may read /proc/1/root (same uid, or CAP_SYS_PTRACE) walks ".." from there up the host's
 * tree, because the walk stops only at its own root or at a mount with no parent.
 */
static void enter_empty_root(const char *root, int sync)
{
    if (unshare(CLONE_NEWNS) < 0) child_fail(sync, "unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail(sync, "making / private");
    if (mount(root, root, NULL, MS_BIND, NULL) < 0) child_fail(sync, "bind-mounting the root");
    if (chdir(root) < 0) child_fail(sync, "chdir to the root");
    if (syscall(SYS_pivot_root, ".", ".") < 0) child_fail(sync, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0) child_fail(sync, "detaching the old root");
    if (chdir("/") < 0) child_fail(sync, "chdir /");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail(sync, "making the root read-only");
}

static void become_infra(const struct options *o, int program, int sync)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0) child_fail(sync, "setsid");
    int null = open("/dev/null", O_RDWR);
    if (null < 0) child_fail(sync, "open /dev/null");
    for (int fd = 0; fd < 3; fd++)
        if (dup2(null, fd) < 0) child_fail(sync, "dup2 /dev/null");
    if (null > 2) close(null);
    enter_empty_root(o->root, sync);
    for (int cap = 0; cap <= CAP_LAST_CAP + 32; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) child_fail(sync, "dropping the bounding set");
    if (setgroups(0, NULL) < 0) child_fail(sync, "setgroups");
    if (setresgid(o->gid, o->gid, o->gid) < 0) child_fail(sync, "setresgid");
    if (setresuid(o->uid, o->uid, o->uid) < 0) child_fail(sync, "setresuid");
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) child_fail(sync, "clearing ambient capabilities");
    if (syscall(SYS_capset, &header, data) < 0) child_fail(sync, "capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(sync, "no_new_privs");
    char *environment[] = { "PATH=/", NULL };
    fexecve(program, o->program, environment);
    child_fail(sync, "exec");
}

int main(int argc, char **argv)
{
    struct options o;
    parse(argc, argv, &o);

    /* Everything named by a host path is opened before the namespaces change. */
    int program = open_or_fail("program", o.program[0], O_RDONLY);
    int user = o.user_ns ? open_or_fail("user namespace", o.user_ns, O_RDONLY) : -1;
    int net = o.net_ns ? open_or_fail("network namespace", o.net_ns, O_RDONLY) : -1;
    int ipc = o.ipc_ns ? open_or_fail("IPC namespace", o.ipc_ns, O_RDONLY) : -1;
    int uts = o.uts_ns ? open_or_fail("UTS namespace", o.uts_ns, O_RDONLY) : -1;
    char temporary[4096];
    if (snprintf(temporary, sizeof temporary, "%s.tmp", o.pid_file) >= (int)sizeof temporary) fail("--pid-file is too long");
    int pid_file = open_or_fail("pid file", temporary, O_WRONLY | O_CREAT | O_TRUNC);
    temporary_to_remove = temporary;

    char self[32];
    snprintf(self, sizeof self, "%d", (int)getpid());
    for (int i = 0; i < o.cgroup_count; i++) {
        char procs[4096];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", o.cgroups[i]);
        write_file("cgroup", procs, self);
    }
    if (o.oom_score_adj) write_file("oom_score_adj", "/proc/self/oom_score_adj", o.oom_score_adj);

    join(user, CLONE_NEWUSER, "user", o.user_ns);
    join(net, CLONE_NEWNET, "network", o.net_ns);
    join(ipc, CLONE_NEWIPC, "IPC", o.ipc_ns);
    join(uts, CLONE_NEWUTS, "UTS", o.uts_ns);
    if (unshare(CLONE_NEWPID) < 0) fail("cannot make a PID namespace: %s", strerror(errno));

    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) fail("fork: %s", strerror(errno));
    if (child == 0) {
        close(sync[0]);
        become_infra(&o, program, sync[1]);
    }
    close(sync[1]);

    char line[64];
    unsigned long long started = start_time(child);
    int length = snprintf(line, sizeof line, "%d %llu\n", (int)child, started);
    if (started == 0) errno = ENOENT;
    if (started == 0 || write(pid_file, line, (size_t)length) != length || close(pid_file) < 0 || rename(temporary, o.pid_file) < 0) {
        int saved = errno;
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        fail("cannot write the pid file %s: %s", o.pid_file, strerror(saved));
    }
    temporary_to_remove = NULL;
    pid_file_to_remove = o.pid_file;

    char message[256];
    ssize_t n;
    while ((n = read(sync[0], message, sizeof message - 1)) < 0 && errno == EINTR) { }
    if (n > 0) {
        message[n] = '\0';
        waitpid(child, NULL, 0);
        fail("the infra process could not start: %s", message);
    }
    fputs(line, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
