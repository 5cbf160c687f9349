/* hull-agent's event loop (see agent.h for what the agent is and why it is written in C). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* After the host went away, the port is looked at again this often (it reports POLLHUP until the host is back). */
#define RECONNECT_POLL_MS 100

enum kind { K_SIGNAL, K_CHANNEL, K_COMMAND, K_STREAM };

struct slot {
    enum kind kind;
    pid_t pid;      /* K_COMMAND */
    uint32_t id;    /* K_STREAM */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct pollfd *fds;
static struct slot *slots;
static size_t nfds, capfds;

static void add(int fd, short events, struct slot slot)
{
    if (nfds == capfds) {
        capfds = capfds ? capfds * 2 : 64;
        fds = realloc(fds, capfds * sizeof *fds);
        slots = realloc(slots, capfds * sizeof *slots);
        if (!fds || !slots) abort();
    }
    fds[nfds] = (struct pollfd){.fd = fd, .events = events};
    slots[nfds++] = slot;
}

static void power_off(void)
{
    channel_flush_blocking(1000);
    sync();
    reboot(RB_POWER_OFF);
    log_msg("poweroff failed: %s", strerror(errno));
    exit(1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) {
        log_msg("signalfd: %s", strerror(errno));
        return 1;
    }
    if (mkdir_p(CONTAINERS_DIR, 0700) < 0 || mkdir_p(CONSOLE_DIR, 0700) < 0 || mkdir_p(RUNC_ROOT, 0700) < 0) {
        log_msg("cannot create %s: %s", CONTAINERS_DIR, strerror(errno));
        return 1;
    }
    /* Without its channel the agent is useless: exiting (a panic, as PID 1) ends the VM, which the host sees. */
    if (channel_open() < 0) return 1;
    log_msg("version %s ready", AGENT_VERSION);

    int64_t channel_paused_until = 0;
    for (;;) {
        nfds = 0;
        add(sigfd, POLLIN, (struct slot){.kind = K_SIGNAL});
        int64_t now = monotonic_ms();
        bool paused = now < channel_paused_until;
        if (!paused)
            add(channel_fd(), (short)(POLLIN | (channel_wants_write() ? POLLOUT : 0)), (struct slot){.kind = K_CHANNEL});
        for (struct command *c = command_first(); c; c = c->next)
            if (c->out_fd >= 0) add(c->out_fd, POLLIN, (struct slot){.kind = K_COMMAND, .pid = c->pid});
        for (struct stream *s = stream_first(); s; s = s->next) {
            short rd = s->rfd >= 0 && !s->eof && s->in.len < STREAM_IN_LIMIT ? POLLIN : 0;
            short wr = s->wfd >= 0 && s->out.len > 0 ? POLLOUT : 0;
            if (s->rfd >= 0 && s->rfd == s->wfd) {
                if (rd | wr) add(s->rfd, (short)(rd | wr), (struct slot){.kind = K_STREAM, .id = s->id});
                continue;
            }
            if (rd) add(s->rfd, rd, (struct slot){.kind = K_STREAM, .id = s->id});
            if (wr) add(s->wfd, wr, (struct slot){.kind = K_STREAM, .id = s->id});
        }

        int n = poll(fds, nfds, paused ? (int)(channel_paused_until - now) : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log_msg("poll: %s", strerror(errno));
            return 1;
        }
        for (size_t i = 0; i < nfds; i++) {
            short ev = fds[i].revents;
            if (!ev) continue;
            switch (slots[i].kind) {
            case K_SIGNAL: {
                struct signalfd_siginfo si;
                while (read(sigfd, &si, sizeof si) == sizeof si) {}
                reap_children();
                break;
            }
            case K_CHANNEL:
                if (ev & (POLLHUP | POLLERR)) {
                    channel_on_hangup();
                    channel_paused_until = monotonic_ms() + RECONNECT_POLL_MS;
                    break;
                }
                if (ev & POLLIN) channel_on_readable();
                if (ev & POLLOUT) channel_on_writable();
                break;
            case K_COMMAND:
                for (struct command *c = command_first(); c; c = c->next)
                    if (c->pid == slots[i].pid && c->out_fd == fds[i].fd) {
                        command_on_output(c);
                        break;
                    }
                break;
            case K_STREAM: {
                struct stream *s = stream_find(slots[i].id);
                if (!s) break;
                if ((ev & (POLLIN | POLLHUP | POLLERR)) && fds[i].fd == s->rfd) stream_on_readable(s);
                s = stream_find(slots[i].id);
                if (s && (ev & (POLLOUT | POLLERR | POLLHUP)) && fds[i].fd == s->wfd) stream_on_writable(s);
                break;
            }
            }
        }
        if (poweroff_requested()) power_off();
    }
}
